/**
 * Helpers for tests of long async jobs (issue 16: progress and cancellation): starting a job,
 * reading its event, cancelling it, waiting for it to reach a state, and making source trees.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/** Where the tests' requests go: an API base (…/elements/api-v2) and the credentials to use. */
export interface JobApi {
  base: string;
  /** User + Organization (platform routes). */
  platformAuth: string;
  /** User + Element (hub routes). */
  hubAuth: string;
  /** Where the webhooks go. */
  callbackUrl: string;
}

/** Starts an async hub call and returns its event id. */
export async function startJob(api: JobApi, pathAndQuery: string, init: RequestInit & { json?: unknown } = {}): Promise<number> {
  const headers = new Headers(init.headers);
  headers.set('authorization', api.hubAuth);
  headers.set('elements-async-request', 'true');
  headers.set('elements-async-callback-url', api.callbackUrl);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(`${api.base}/hubs/documents${pathAndQuery}`, { ...init, headers, body });
  const answer: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(answer));
  assert.equal(answer.eventStatus, 'dispatched');
  return answer.eventId;
}

/** GET of an event (through the instance's route when `instanceId` is given). */
export async function getEvent(api: JobApi, eventId: number, instanceId?: number): Promise<{ status: number; body: any }> {
  const route = instanceId === undefined ? `/instances/events/${eventId}` : `/instances/${instanceId}/events/${eventId}`;
  const res = await fetch(`${api.base}${route}`, { headers: { authorization: api.platformAuth } });
  return { status: res.status, body: await res.json() };
}

/** PUT …/cancel of an event; `auth` defaults to the platform credentials. */
export async function cancel(api: JobApi, eventId: number, instanceId?: number, auth = api.platformAuth): Promise<{ status: number; body: any }> {
  const route = instanceId === undefined ? `/instances/events/${eventId}/cancel` : `/instances/${instanceId}/events/${eventId}/cancel`;
  const res = await fetch(`${api.base}${route}`, { method: 'PUT', headers: { authorization: auth } });
  return { status: res.status, body: await res.json() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Reads the event every 50 ms until `done(event)` holds (rejects after `timeoutMs`); every
 * reading goes to `seen`, oldest first. Polling here waits for a state, it measures nothing.
 */
export async function waitForEvent(api: JobApi, eventId: number, done: (event: any) => boolean, timeoutMs = 30_000, seen: any[] = []): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await getEvent(api, eventId);
    assert.equal(status, 200, JSON.stringify(body));
    seen.push(body);
    if (done(body)) return body;
    if (Date.now() > until) throw new Error(`event ${eventId} did not get there in time; last: ${JSON.stringify(body.execution)} ${JSON.stringify(body.progress)}`);
    await sleep(50);
  }
}

/** Writes `count` small files (a few hundred bytes each) under `root`, `perFolder` per sub-folder. */
export function makeTree(root: string, count: number, perFolder = count): Map<string, number> {
  const sizes = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const folder = perFolder >= count ? '' : `d${Math.floor(i / perFolder)}/`;
    const rel = `${folder}f${i}.txt`;
    const content = `file ${i} `.repeat(20 + (i % 30));
    fs.mkdirSync(path.join(root, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
    sizes.set(rel, Buffer.byteLength(content));
  }
  return sizes;
}

/** Every regular file under `root`, relative paths (temp names included: tests look for them). */
export function filesUnder(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(root, path.join(d.parentPath ?? (d as any).path, d.name)))
    .sort();
}

/** Ferry's temp file names (a half-made file) among `files`. */
export function tempFiles(files: string[]): string[] {
  return files.filter((f) => path.basename(f).startsWith('.ferry-upload-'));
}
