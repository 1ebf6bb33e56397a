import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { freshSchema, pgTestUrl } from '../helpers/postgres.js';
const url = (await pgTestUrl())!;
const fs = { schema: process.env.SCH! }; const N = Number(process.env.N);
const s = new PostgresStore({ url, schema: fs.schema, poolSize: 2 });
await s.migrate();
const c = new pg.Client(url); await c.connect();
await c.query(`SET search_path = ${fs.schema}`);
const n = Number((await c.query('SELECT count(*) FROM jobs')).rows[0].count);
if (n < N) {
  let t = Date.now();
  await c.query(`INSERT INTO events (id, organization_id, instance_id, user_id, created_at, status, execution, method, url, callback_url)
    SELECT g, 1, 1 + (g % ${Number(process.env.I ?? 50)}), 1, 0, 'DISPATCHED', 'dispatched', 'GET', '/x', 'http://cb' FROM generate_series(1, ${N}) g`);
  await c.query(`INSERT INTO jobs (event_id, instance_id, request) SELECT g, 1 + (g % ${Number(process.env.I ?? 50)}), '{"method":"GET","url":"/x","headers":{},"organizationId":1,"userId":1}' FROM generate_series(1, ${N}) g`);
  await c.query(`SELECT setval('events_id_seq', ${N})`);
  await c.query('VACUUM ANALYZE jobs'); await c.query('VACUUM ANALYZE events');
  console.log('loaded', Date.now() - t);
}
await c.end();
for (let i = 0; i < 10; i++) {
  let t = performance.now();
  const j = await s.claimJobs('r' + i, 32, 60000, 4);
  const claim = performance.now() - t; t = performance.now();
  const acc = await s.acceptEvents(Array.from({ length: 32 }, () => ({ organizationId: 1, userId: 1, instanceId: 7, callbackUrl: 'http://cb', idempotencyKey: null, request: { method: 'GET', url: '/', headers: {} }, body: null })));
  const accept = performance.now() - t; t = performance.now();
  await s.completeJobs('r', j.map((x) => ({ eventId: x.eventId, execution: 'completed', statusCode: 200, response: null, buildNotification: (id) => String(id) })));
  const complete = performance.now() - t;
  console.log({ claimed: j.length, claim: claim.toFixed(1), accept: accept.toFixed(1), complete: complete.toFixed(1) });
}
await s.close();
