/**
 * Crash safety (DESIGN §1.5 guarantees, §3.2): Ferry runs as a child process and is killed with
 * SIGKILL several times while concurrent clients stream asynchronous requests (pings and small
 * uploads) at it; each time it is restarted on the same data dir and port. Afterwards the ledger
 * must balance: every eventId that was answered 200 gets its notification delivered (at least
 * once, deduplicated by webhook id), completed, signed, with its upload on disk. Requests that
 * failed with a connection error were never acknowledged and are not counted as accepted; their
 * events may still exist (committed, answer lost) and may be delivered too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAST_ASYNC, ORG_SECRET, PLATFORM_AUTH, USER_SECRET, multipartFile, startReceiver, type Receiver } from '../helpers/server.js';
import { cliMissing, freePort, startFerryProcess, type FerryProcess } from '../helpers/process.js';

const KEY = 'crash-signature-key';
const SENDERS = 6;
const TARGET_ACCEPTED = 360;
/** Kill the server when this many requests have been accepted (three hard crashes mid-stream). */
const KILL_AT = [60, 150, 250];
const TEST_BUDGET_MS = 55_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGKILL mid-stream, three times: every accepted event is delivered, none is lost', { timeout: 60_000, skip: cliMissing() ?? undefined }, async () => {
  const started = Date.now();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-crash-'));
  const port = await freePort();
  const env = { ...FAST_ASYNC, FERRY_USER_SECRET: USER_SECRET, FERRY_ORG_SECRET: ORG_SECRET };
  let receiver: Receiver | null = null;
  let ferry: FerryProcess | null = null;
  try {
    // The receiver dedupes on the webhook id, as DESIGN §1.5 tells receivers to.
    receiver = await startReceiver();
    const byWebhookId = new Map<string, number>();
    const webhookIdsOf = new Map<number, Set<string>>();
    const badHooks: string[] = [];
    receiver.respond = (hook) => {
      const id = String(hook.headers['elements-webhook-id'] ?? '');
      const eventId = hook.body?.eventId;
      const signature = 'sha256=' + crypto.createHmac('sha256', KEY).update(hook.raw).digest('base64');
      if (!id || typeof eventId !== 'number') badHooks.push(`malformed hook ${hook.raw.slice(0, 200)}`);
      else if (hook.headers['elements-webhook-signature'] !== signature) badHooks.push(`bad signature on event ${eventId}`);
      else if (hook.body.eventStatus !== 'completed' || hook.body.statusCode !== 200) badHooks.push(`event ${eventId}: ${hook.raw.slice(0, 300)}`);
      if (id && typeof eventId === 'number' && !byWebhookId.has(id)) {
        byWebhookId.set(id, eventId);
        let ids = webhookIdsOf.get(eventId);
        if (!ids) webhookIdsOf.set(eventId, (ids = new Set()));
        ids.add(id);
      }
      return { status: 200 };
    };

    ferry = await startFerryProcess({ dataDir, port, env });
    const created = await fetch(`${ferry.base}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: 'localfs' }, name: 'crash', configuration: { root: 'crash', 'event.notification.signature.key': KEY } }),
    });
    const instance: any = await created.json();
    assert.equal(created.status, 200, JSON.stringify(instance));
    const auth = `User ${USER_SECRET}, Element ${instance.token}`;
    const base = ferry.base;

    // ---- the stream ----------------------------------------------------------------------
    const accepted = new Map<number, { kind: 'ping' | 'upload'; file?: string; content?: string }>();
    let connectionErrors = 0;
    const unexpected: string[] = [];
    let sending = true;

    async function sendOne(sender: number, n: number): Promise<void> {
      const upload = n % 2 === 1;
      const file = `/s${sender}/f${n}.txt`;
      const content = `sender ${sender} request ${n} ${crypto.randomBytes(8).toString('hex')}`;
      const headers = { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver!.url };
      let res: Response;
      try {
        res = upload
          ? await fetch(`${base}/hubs/documents/files?path=${encodeURIComponent(file)}&overwrite=true`, {
              method: 'POST',
              headers,
              body: multipartFile(content, path.basename(file)),
              signal: AbortSignal.timeout(5000),
            })
          : await fetch(`${base}/hubs/documents/ping`, { headers, signal: AbortSignal.timeout(5000) });
      } catch {
        connectionErrors++; // never acknowledged: not accepted
        await sleep(20);
        return;
      }
      let body: any;
      try {
        body = await res.json();
      } catch {
        connectionErrors++; // the server died while answering: not acknowledged
        return;
      }
      if (res.status === 200 && Number.isInteger(body?.eventId) && body.eventStatus === 'dispatched') {
        accepted.set(body.eventId, upload ? { kind: 'upload', file, content } : { kind: 'ping' });
      } else {
        unexpected.push(`${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      }
    }

    const senders = Array.from({ length: SENDERS }, async (_, sender) => {
      for (let n = 0; sending && accepted.size < TARGET_ACCEPTED && Date.now() - started < TEST_BUDGET_MS / 2; n++) {
        await sendOne(sender, n);
      }
    });

    let kills = 0;
    try {
      for (const threshold of KILL_AT) {
        while (accepted.size < threshold) {
          if (Date.now() - started > TEST_BUDGET_MS / 2) assert.fail(`stream stalled at ${accepted.size} accepted`);
          await sleep(5);
        }
        await ferry.kill();
        kills++;
        await sleep(150); // clients hit a dead port for a while
        ferry = await startFerryProcess({ dataDir, port, env });
      }
    } finally {
      // After the last restart the senders go on to the target; on a failure they stop now.
      if (kills < KILL_AT.length) sending = false;
      await Promise.all(senders);
    }
    assert.equal(kills, KILL_AT.length);
    assert.deepEqual(unexpected, [], 'every answer was a connection error or a 200 dispatched');
    assert.ok(accepted.size >= TARGET_ACCEPTED, `accepted ${accepted.size}`);

    // ---- the ledger ------------------------------------------------------------------------
    const missing = () => [...accepted.keys()].filter((id) => !webhookIdsOf.has(id));
    while (missing().length > 0 && Date.now() - started < TEST_BUDGET_MS) await sleep(50);
    const lost = missing();
    assert.deepEqual(lost, [], `${lost.length} of ${accepted.size} accepted events never delivered (after ${kills} kills)`);
    assert.deepEqual(badHooks, []);
    for (const [eventId, ids] of webhookIdsOf) {
      assert.equal(ids.size, 1, `event ${eventId} got ${ids.size} distinct notifications`);
    }
    // Delivered but not acknowledged: committed just before a kill, answer lost. Bounded by the
    // requests that were in flight when the server died.
    const orphans = [...webhookIdsOf.keys()].filter((id) => !accepted.has(id));
    assert.ok(orphans.length <= connectionErrors, `${orphans.length} unacknowledged deliveries, ${connectionErrors} connection errors`);

    // Every accepted upload ran: its bytes are on disk.
    for (const job of accepted.values()) {
      if (job.kind !== 'upload') continue;
      const onDisk = path.join(dataDir, 'files', 'crash', job.file!);
      assert.equal(fs.readFileSync(onDisk, 'utf8'), job.content, job.file);
    }
    // And the events API agrees: every accepted event is NOTIFIED.
    const events: any[] = [];
    let next: string | null = '';
    while (next !== null) {
      const res: Response = await fetch(`${base}/instances/events?pageSize=500${next ? `&nextPage=${encodeURIComponent(next)}` : ''}`, {
        headers: { authorization: PLATFORM_AUTH },
      });
      assert.equal(res.status, 200);
      events.push(...((await res.json()) as any[]));
      next = res.headers.get('elements-next-page-token');
    }
    const status = new Map(events.map((e) => [e.id, e.status]));
    const notNotified = [...accepted.keys()].filter((id) => status.get(id) !== 'NOTIFIED');
    assert.deepEqual(notNotified, [], 'accepted events not NOTIFIED');
  } finally {
    await ferry?.kill();
    await receiver?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
