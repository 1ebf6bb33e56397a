// pg-wire: a loopback TCP proxy in front of PostgreSQL that counts what crosses it, by reading
// the wire protocol's message frames (type byte + int32 length): round trips (a simple 'Q'uery
// or an extended-protocol 'S'ync each wait for the server once), statements (each 'Q' and each
// 'E'xecute), the statement texts ('Q' and 'P'arse, normalised: numbers and literals → ?), and
// from the server the NOTIFY deliveries ('A'), and how long each round trip waited for the server
// (from its 'Q' or 'S' to the server's 'Z'eady, attributed to the round trip's last statement).
// It sees every process and thread that connects through it (nodes, runner threads), so it needs
// no pg_stat_statements and no changed client.
import net from 'node:net';

/** Statement text with literals and numbers replaced, whitespace collapsed, cut to 140 chars. */
function normalise(sql) {
  return sql
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\$\d+/g, '$')
    .replace(/\b\d+\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 140);
}

/** Splits a byte stream into protocol frames; `onFrame(type, body)`; `startup` frames have no type byte. */
function framer(startup, onFrame) {
  let buf = Buffer.alloc(0);
  let first = startup;
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (first) {
        if (buf.length < 4) return;
        const len = buf.readInt32BE(0);
        if (buf.length < len) return;
        const code = buf.readInt32BE(4);
        buf = buf.subarray(len);
        if (code !== 80877103) first = false; // an SSLRequest is followed by the real startup message
        continue;
      }
      if (buf.length < 5) return;
      const len = buf.readInt32BE(1);
      if (buf.length < len + 1) return;
      onFrame(String.fromCharCode(buf[0]), buf.subarray(5, len + 1));
      buf = buf.subarray(len + 1);
    }
  };
}

/**
 * Starts the proxy; resolves with its port, `counts()` (totals so far), `reset()`, `close()`.
 * `upstreamPorts()`; `counts()`: { roundTrips, statements, notifies (NOTIFY deliveries received),
 * texts: Map<text, n>, waits: Map<text, { n, ms }> (round trips ending with that statement and
 * the milliseconds they waited for the server in all) }.
 */
export async function startWireCounter(target = { host: '127.0.0.1', port: 5432 }) {
  let roundTrips = 0;
  let statements = 0;
  let notifies = 0;
  let texts = new Map();
  let waits = new Map();
  /** Prepared statement name → text, so an Execute of a named statement is attributed. */
  const named = new Map();
  const note = (text) => texts.set(text, (texts.get(text) ?? 0) + 1);
  const sockets = new Set();
  const upstreams = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    upstreams.add(upstream);
    let lastParsed = null;
    let lastText = '(none)';
    /** Round trips sent on this connection and not yet answered: [text, sent at]. */
    const inFlight = [];
    client.on('data', framer(true, (type, body) => {
      if (type === 'Q') {
        roundTrips++;
        statements++;
        const text = normalise(body.subarray(0, body.indexOf(0)).toString('utf8'));
        note(text);
        inFlight.push([text, performance.now()]);
      } else if (type === 'P') {
        const nameEnd = body.indexOf(0);
        const name = body.subarray(0, nameEnd).toString('utf8');
        const text = normalise(body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1)).toString('utf8'));
        if (name) named.set(name, text);
        lastParsed = text;
      } else if (type === 'B') {
        const portalEnd = body.indexOf(0);
        const name = body.subarray(portalEnd + 1, body.indexOf(0, portalEnd + 1)).toString('utf8');
        if (name) lastParsed = named.get(name) ?? `(prepared ${name})`;
      } else if (type === 'E') {
        statements++;
        lastText = lastParsed ?? '(unnamed)';
        note(lastText);
      } else if (type === 'S') {
        roundTrips++;
        inFlight.push([lastText, performance.now()]);
      }
    }));
    upstream.on('data', framer(false, (type) => {
      if (type === 'A') notifies++;
      else if (type === 'Z' && inFlight.length) {
        const [text, at] = inFlight.shift();
        const w = waits.get(text) ?? { n: 0, ms: 0 };
        w.n++;
        w.ms += performance.now() - at;
        waits.set(text, w);
      }
    }));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      upstreams.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    /** The local ports of the open connections to PostgreSQL (pg_stat_activity.client_port). */
    upstreamPorts: () => [...upstreams].map((s) => s.localPort).filter(Boolean),
    counts: () => ({ roundTrips, statements, notifies, texts: new Map(texts), waits: new Map([...waits].map(([t, w]) => [t, { ...w }])) }),
    reset() {
      roundTrips = 0;
      statements = 0;
      notifies = 0;
      texts = new Map();
      waits = new Map();
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
