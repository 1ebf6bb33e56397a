/**
 * Cancellation is durable (issue 16): Ferry runs as a child process; a running folder copy
 * (held mid-way by the test pause point `copy-batch:3`) and a job waiting behind it
 * (FERRY_INSTANCE_CONCURRENCY=1) are cancelled, the process is killed with SIGKILL right after
 * the 200 answers, and restarted on the same data dir without the pause point. Neither job runs
 * (again): the copy has no more files than at the kill, the waiting job's destination does not
 * exist, and both webhooks say `cancelled`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAST_ASYNC, ORG_SECRET, PLATFORM_AUTH, USER_SECRET, startReceiver } from '../helpers/server.js';
import { cliMissing, dropProcessSchema, freePort, startFerryProcess } from '../helpers/process.js';
import { cancel, filesUnder, makeTree, startJob, waitForEvent, type JobApi } from '../helpers/jobs.js';

const FILES = 2000;

test('SIGKILL right after a 200 cancel, restart: the cancelled jobs do not run', { skip: cliMissing() ?? undefined, timeout: 120_000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cancel-crash-'));
  const receiver = await startReceiver();
  const port = await freePort();
  const env = { ...FAST_ASYNC, FERRY_USER_SECRET: USER_SECRET, FERRY_ORG_SECRET: ORG_SECRET, FERRY_INSTANCE_CONCURRENCY: '1', FERRY_LEASE: '30000' };
  let ferry = await startFerryProcess({ dataDir, port, env: { ...env, FERRY_TEST_PAUSE: 'copy-batch:3' } });
  try {
    const created = await fetch(`${ferry.base}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: 'localfs' }, name: 'crash', configuration: { root: 'crash' } }),
    });
    const instance: any = await created.json();
    assert.equal(created.status, 200, JSON.stringify(instance));
    const root = path.join(dataDir, 'files', 'crash');
    makeTree(path.join(root, 'src'), FILES, 500);
    makeTree(path.join(root, 'small'), 3);
    const api: JobApi = { base: ferry.base, platformAuth: PLATFORM_AUTH, hubAuth: `User ${USER_SECRET}, Element ${instance.token}`, callbackUrl: receiver.url };

    const running = await startJob(api, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst' } });
    await waitForEvent(api, running, (e) => e.execution.state === 'running' && e.progress.itemsDone > 0);
    const waiting = await startJob(api, '/folders/copy?path=/small', { method: 'POST', json: { path: '/dst-waiting' } });
    assert.equal((await cancel(api, waiting)).status, 200);
    assert.equal((await cancel(api, running)).status, 200);
    await ferry.kill();
    const atKill = filesUnder(path.join(root, 'dst')).filter((f) => !path.basename(f).startsWith('.ferry-upload-'));

    ferry = await startFerryProcess({ dataDir, port, env });
    api.base = ferry.base;
    // On SQLite the restarted node owns every lease at once; on PostgreSQL (other nodes may hold
    // leases) the dead node's lease on the running job must expire first: FERRY_LEASE, 30 s.
    // Delivery is at least once: a webhook sent just before the kill may come again after the
    // restart, so each job's is waited for by itself.
    for (const id of [running, waiting]) {
      const [hook] = await receiver.waitFor(1, 60_000, (h) => h.body?.eventId === id);
      assert.equal(hook.body.eventStatus, 'cancelled', `event ${id}`);
      assert.equal((await waitForEvent(api, id, (e) => e.execution.state === 'cancelled')).execution.state, 'cancelled');
    }
    const after = filesUnder(path.join(root, 'dst')).filter((f) => !path.basename(f).startsWith('.ferry-upload-'));
    assert.ok(after.length < FILES, 'the copy did not run again');
    assert.deepEqual(after, atKill, 'no file was copied after the restart');
    assert.equal(fs.existsSync(path.join(root, 'dst-waiting')), false, 'the waiting job never ran');
  } finally {
    await ferry.kill();
    await receiver.close();
    await dropProcessSchema(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
