/**
 * The spool of async uploads (issue 25): bodies are streamed to a file (not memory, not a store
 * row), bounded by FERRY_ASYNC_MAX_BODY, deleted when the job ends or when nothing takes them
 * (a refused request), and swept when no job refers to them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Spool, SpoolLimitExceeded, spoolBytes } from '../../src/async/spool.js';
import { FAST_ASYNC, multipartFile, startReceiver, startTestServer } from '../helpers/server.js';

const spoolFiles = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

test('Spool: receives a body into a file, refuses one over its limit without a trace, sweeps orphans', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-spool-'));
  try {
    const spool = new Spool(dir);
    const bytes = crypto.randomBytes(300_000);
    const kept = await spool.receive(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), 300_000);
    assert.equal(kept.size, 300_000);
    assert.ok(fs.readFileSync(spool.pathOf(kept.file)).equals(bytes));
    await assert.rejects(spool.receive(Readable.from([bytes]), 299_999), SpoolLimitExceeded);
    assert.deepEqual(spoolFiles(dir), [kept.file]);
    const orphan = await spool.receive(Readable.from([Buffer.from('x')]), 10);
    assert.equal(await spoolBytes(dir), 300_001);
    const chunks: Buffer[] = [];
    for await (const c of await spool.open(kept)) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(bytes));
    assert.equal(await spool.sweep([kept.file], 0), 1);
    assert.deepEqual(spoolFiles(dir), [kept.file]);
    assert.equal(fs.existsSync(spool.pathOf(orphan.file)), false);
    await spool.remove(kept);
    assert.equal(await spoolBytes(dir), 0);
    assert.throws(() => spool.pathOf('../etc/passwd'), /not a spool file name/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('async uploads go through the spool: over the limit 413, refused requests leave nothing, finished jobs delete their file', async () => {
  const receiver = await startReceiver();
  const server = await startTestServer({ ...FAST_ASYNC, FERRY_ASYNC_MAX_BODY: '200000' });
  const spoolDir = path.join(server.dataDir, 'spool');
  try {
    const { auth } = await server.instance('localfs', { root: 'spooled' });
    const upload = (file: string, bytes: Buffer, headers: Record<string, string>) =>
      fetch(`${server.base}/hubs/documents/files?path=${encodeURIComponent(file)}`, {
        method: 'POST',
        headers: { authorization: auth, 'elements-async-request': 'true', ...headers },
        body: multipartFile(bytes, path.basename(file)),
      });

    const tooBig = await upload('/big.bin', crypto.randomBytes(250_000), { 'elements-async-callback-url': receiver.url });
    assert.equal(tooBig.status, 413);
    assert.match(((await tooBig.json()) as any).message, /FERRY_ASYNC_MAX_BODY/);
    assert.deepEqual(spoolFiles(spoolDir), []);

    const noCallback = await upload('/a.bin', Buffer.from('abc'), {});
    assert.equal(noCallback.status, 400);
    await noCallback.arrayBuffer();
    assert.deepEqual(spoolFiles(spoolDir), [], 'a refused request leaves no spool file');

    const bytes = crypto.randomBytes(150_000);
    const res = await upload('/ok/file.bin', bytes, { 'elements-async-callback-url': receiver.url });
    assert.equal(res.status, 200);
    const { eventId } = (await res.json()) as any;
    const [hook] = await receiver.waitFor(1, 15_000, (h) => h.body?.eventId === eventId);
    assert.equal(hook.body.eventStatus, 'completed', hook.raw);
    assert.deepEqual(hook.body.response.events.map((e: any) => e.path), ['/ok/file.bin']);
    const got = await fetch(`${server.base}/hubs/documents/files?path=/ok/file.bin`, { headers: { authorization: auth } });
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
    // The job's file goes once its outcome is stored, just before the webhook may leave.
    for (let i = 0; i < 100 && spoolFiles(spoolDir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(spoolFiles(spoolDir), [], 'a finished job deletes its spool file');
  } finally {
    await server.close();
    await receiver.close();
  }
});

test('a job whose spool file is missing (a node not sharing FERRY_SPOOL_DIR) fails with a message naming it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-spool-missing-'));
  const receiver = await startReceiver();
  const api = await startTestServer({ ...FAST_ASYNC, FERRY_ROLE: "api" }, dir);
  let full: Awaited<ReturnType<typeof startTestServer>> | null = null;
  try {
    const { auth } = await api.instance('localfs', { root: 'missing' });
    const res = await fetch(`${api.base}/hubs/documents/files?path=/lost.bin`, {
      method: 'POST',
      headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
      body: multipartFile(Buffer.from('lost bytes'), 'lost.bin'),
    });
    assert.equal(res.status, 200);
    const { eventId } = (await res.json()) as any;
    await api.close();
    const spoolDir = path.join(dir, 'spool');
    for (const f of spoolFiles(spoolDir)) fs.rmSync(path.join(spoolDir, f));
    full = await startTestServer(FAST_ASYNC, dir);
    const [hook] = await receiver.waitFor(1, 15_000, (h) => h.body?.eventId === eventId);
    assert.equal(hook.body.eventStatus, 'failed');
    assert.equal(hook.body.statusCode, 500);
    assert.match(hook.body.response.message, /FERRY_SPOOL_DIR/);
  } finally {
    await full?.close();
    await receiver.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
