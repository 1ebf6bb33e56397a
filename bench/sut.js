// A system under test in its own process (`node bench/sut.js <kind> <options JSON>`), so the
// load generator and the webhook receivers (in the parent) never share its event loop: the way
// each would be deployed. Kinds: `ferry` (options: startNode's), the peers' pipelines
// `bullmq` and `pgboss` (bench/peers.js), and `bare-http`: a node:http server answering every
// request with a small JSON body (bench/cpu.js's floor for any Node server on this host). Reports `{origin, ...}` over IPC once listening;
// shuts down cleanly on the message 'close'.
const [kind, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}');

let system;
if (kind === 'ferry') {
  const { startNode } = await import('./lib.js');
  const node = await startNode({ ...options, inProcess: true });
  system = {
    info: { origin: node.origin, auth: node.auth, instance: node.instance, localfsBase: node.config.localfsBase },
    close: () => node.close(),
  };
} else if (kind === 'bare-http') {
  const http = await import('node:http');
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  system = { info: { origin: `http://127.0.0.1:${server.address().port}` }, close: () => new Promise((resolve) => server.close(resolve)) };
} else {
  const peers = await import('./peer-systems.js');
  const started = await peers[kind](options);
  system = { info: { origin: started.origin, path: started.path, skipped: started.skipped }, close: () => started.close() };
}
process.on('message', async (message) => {
  if (message !== 'close') return;
  await system.close();
  process.exit(0);
});
process.send({ ready: true, ...system.info });
