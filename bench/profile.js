// Profiling helper (not part of `npm run bench`): drives one Ferry node with async pings and
// waits for their webhooks, so `node --cpu-prof --cpu-prof-dir=DIR bench/profile.js [sqlite|postgres] [count]`
// yields a CPU profile of accept → run → deliver. `node bench/top.js DIR/*.cpuprofile` prints the
// functions with the most self time.
import { PING, closedLoop, newPool, startNode, startReceiver, waitFor } from './lib.js';

const store = process.argv[2] ?? 'sqlite';
const count = Number(process.argv[3] ?? 5000);
const receiver = await startReceiver();
const node = await startNode({ store, inProcess: true });
const pool = newPool(node.origin, 32);
const headers = { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url };
const load = await closedLoop(pool, { count, seconds: 30, connections: 32, opts: () => ({ method: 'GET', path: PING, headers }) });
await waitFor(() => receiver.count >= load.ok, 60_000);
console.log(`accepted ${load.ok} at ${load.rps.toFixed(0)}/s, delivered ${receiver.count}`);
await pool.close();
await node.close();
await receiver.close();
