/**
 * Graceful drain: what a node does between a stop signal (SIGTERM, SIGINT) and its exit.
 *
 * 1. It is draining at once: `/readyz` answers 503 (observability/routes.ts), so a load balancer
 *    stops sending it requests.
 * 2. HTTP: the listener closes (no new connections); requests in flight are answered, each
 *    connection closes after its answer (`Connection: close`), idle keep-alive connections
 *    close at once.
 * 3. Jobs: the runner claims nothing more; running jobs get until the deadline
 *    (FERRY_DRAIN_TIMEOUT) to finish, and the sender keeps delivering — their webhooks included
 *    — until they have; then the sender stops, its attempts in flight also bounded by the
 *    deadline.
 * 4. At the deadline, what is still running is released in the store — jobs and leased
 *    notifications become claimable at once, and other nodes are woken (PostgreSQL NOTIFY) —
 *    so another node, or this one's next start, takes it over without waiting for the lease.
 *    Their late outcomes on this node are dropped.
 *
 * A node with a runner thread drains the thread the same way (async/runner-thread.ts), in
 * parallel with its HTTP drain. The caller (cli.ts) then closes the node and exits 0; a second
 * signal exits at once (a crash, which loses nothing: leases expire).
 *
 * May import: Node, pino, async/ (Runner, Sender), store types.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Runner } from '../async/runner.js';
import type { Sender } from '../async/sender.js';
import type { Store } from '../store/store.js';

/** What a drain left undone and gave back. */
export interface DrainReport {
  /** Jobs still running at the deadline, released in the store. */
  jobsReleased: number;
  /** Webhook attempts still in flight at the deadline, released in the store. */
  notificationsReleased: number;
  /** Whether every HTTP request in flight was answered before the deadline. */
  requestsFinished: boolean;
}

/** Resolves true when `p` settles before `deadline` (epoch ms), false otherwise. */
export async function beforeDeadline(p: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes the listener and waits (until `deadline`) for the requests in flight to be answered
 * and their connections to close. False when some were still open at the deadline.
 */
export async function drainHttp(server: Server, deadline: number): Promise<boolean> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // A connection that answered its last request becomes idle: close it then. Only while draining.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  try {
    return await beforeDeadline(closed, deadline);
  } finally {
    clearInterval(sweep);
  }
}

/** Lets the runner's jobs and the sender's attempts finish until `deadline`, then releases the rest. */
export async function drainWork(
  parts: { runner: Runner; sender: Sender; store: Store; log: Logger },
  deadline: number,
): Promise<Omit<DrainReport, 'requestsFinished'>> {
  const { runner, sender, store, log } = parts;
  const jobsDone = await beforeDeadline(runner.stop(), deadline);
  const jobIds = jobsDone ? [] : runner.abandon();
  // Their webhooks were handed to the sender as they finished: it delivers them until the deadline.
  const deliveriesDone = await beforeDeadline(sender.stop(), deadline);
  const notificationIds = deliveriesDone ? [] : sender.abandon();
  if (jobIds.length || notificationIds.length) {
    try {
      await store.releaseLeases(runner.owner, jobIds, notificationIds);
    } catch (e) {
      // Not released: their leases expire on their own (FERRY_LEASE), as after a crash.
      log.error({ err: e }, 'releasing the leases of unfinished work failed; they will be taken over when their leases expire');
    }
  }
  return { jobsReleased: jobIds.length, notificationsReleased: notificationIds.length };
}
