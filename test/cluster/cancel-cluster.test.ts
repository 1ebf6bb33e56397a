/**
 * Cancellation across nodes (issue 16, PostgreSQL): an `api` node accepts a folder copy, a
 * `worker` node runs it (held mid-way by the test pause point `copy-batch:3`), and a cancel sent
 * to the api node stops it on the worker. The worker's lease heartbeat checks only every 20 s
 * here (FERRY_LEASE=60000), so the job stopping well within the wait below is the cancel
 * channel's NOTIFY at work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { clusterSkipReason, startCluster, type Cluster } from '../helpers/cluster.js';
import { PLATFORM_AUTH, USER_SECRET, startReceiver } from '../helpers/server.js';
import { cancel, filesUnder, makeTree, startJob, tempFiles, waitForEvent, type JobApi } from '../helpers/jobs.js';

const skip = (await clusterSkipReason()) ?? undefined;
const FILES = 2000;

test('a cancel sent to one node stops the job running on another', { skip, timeout: 90_000 }, async () => {
  const receiver = await startReceiver();
  let cluster: Cluster | null = null;
  try {
    cluster = await startCluster([], { FERRY_LEASE: '60000' });
    const api = await cluster.addNode('api');
    await cluster.addNode('worker', { FERRY_TEST_PAUSE: 'copy-batch:3' });
    const created = await fetch(`${api.base}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: 'localfs' }, name: 'cancel', configuration: { root: 'cancel' } }),
    });
    const instance: any = await created.json();
    assert.equal(created.status, 200, JSON.stringify(instance));
    const root = path.join(cluster.localfsBase, 'cancel');
    makeTree(path.join(root, 'src'), FILES, 500);
    const jobs: JobApi = { base: api.base!, platformAuth: PLATFORM_AUTH, hubAuth: `User ${USER_SECRET}, Element ${instance.token}`, callbackUrl: receiver.url };

    const eventId = await startJob(jobs, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst' } });
    await waitForEvent(jobs, eventId, (e) => e.execution.state === 'running' && e.progress.itemsDone > 0);
    const answer = await cancel(jobs, eventId);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.execution.state, 'cancelling', 'the api node does not run it: the worker stops it');

    const [hook] = await receiver.waitFor(1, 10_000, (h) => h.body?.eventId === eventId);
    assert.equal(hook.body.eventStatus, 'cancelled');
    const copied = filesUnder(path.join(root, 'dst'));
    assert.ok(copied.length > 0 && copied.length < FILES, `copied ${copied.length} of ${FILES}`);
    assert.deepEqual(tempFiles(copied), []);
    assert.equal(hook.body.response.events.filter((e: any) => e.metadata.type === 'file').length, copied.length);
    assert.equal((await waitForEvent(jobs, eventId, (e) => e.execution.state === 'cancelled')).execution.state, 'cancelled');
  } finally {
    await cluster?.close();
    await receiver.close();
  }
});
