/**
 * The README's "Client" section runs as written (issue 20): its ten-line client example, the bulk
 * export snippet that continues it, and its webhook receiver, each as an ES module in a child process, against a real Ferry. Only the
 * addresses, secrets and the package specifier (the build in packages/client/dist) are swapped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAST_ASYNC, ORG_SECRET, USER_SECRET, startTestServer, type TestServer } from '../helpers/server.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dist = path.join(root, 'packages', 'client', 'dist');

function clientBlocks(): string[] {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Client\n'), readme.indexOf('\n## ', readme.indexOf('\n## Client\n') + 5));
  return [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function run(file: string): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

describe('README Client section', () => {
  let srv: TestServer;
  let dir: string;
  let receiver: ReturnType<typeof run> | undefined;
  before(async () => {
    srv = await startTestServer(FAST_ASYNC);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-readme-client-'));
  });
  after(async () => {
    receiver?.child.kill();
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the example, its bulk export and the receiver run as written: files listed, copy completed, records read, webhook verified', async () => {
    const [example, bulk, receiverCode] = clientBlocks();
    assert.ok(example && bulk && receiverCode, 'the Client section has three js blocks: the example, bulk, the receiver');
    assert.ok(example.trim().split('\n').length <= 10, 'the example is ten lines at most');
    const port = await freePort();
    const clientUrl = new URL(`file://${path.join(dist, 'index.js')}`).href;
    const verifyUrl = new URL(`file://${path.join(dist, 'verify.js')}`).href;

    fs.writeFileSync(path.join(dir, 'receiver.mjs'), receiverCode.replace("'@ferry/client/verify'", `'${verifyUrl}'`).replace('.listen(4000)', `.listen(${port}, '127.0.0.1')`));
    receiver = run(path.join(dir, 'receiver.mjs'));

    const script = `${example}\n${bulk.replace(/^ {2}/gm, '')}`
      .replace("'@ferry/client'", `'${clientUrl}'`)
      .replace('http://127.0.0.1:8080', srv.base.replace(/\/elements\/api-v2$/, ''))
      .replace("'walkthrough-user'", `'${USER_SECRET}'`)
      .replace("'walkthrough-org'", `'${ORG_SECRET}'`)
      .replace('http://127.0.0.1:4000/hook', `http://127.0.0.1:${port}/hook`);
    fs.writeFileSync(path.join(dir, 'example.mjs'), script);
    // The receiver may still be starting: the notification is retried until it answers.
    const example_ = run(path.join(dir, 'example.mjs'));
    assert.equal(await example_.exit, 0, example_.output());
    assert.match(example_.output(), /\[ '\/hello\/hello\.txt' \]\ncompleted\n\/hello\/hello\.txt 12\n$/);

    for (let i = 0; i < 200 && !/event \d+ completed/.test(receiver.output()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(receiver.output(), /event \d+ completed/, receiver.output());
    assert.doesNotMatch(receiver.output(), /refused/);
  });
});
