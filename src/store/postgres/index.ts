/**
 * The PostgreSQL store (`pg`): several Ferry nodes share one database. Every method is one
 * statement or one transaction on a pooled connection (a completion: a read, then one
 * statement); the modules beside this file hold the SQL, grouped by concern (identity, tags,
 * jobs, notifications, events), and this class only wires them to the `Store` interface.
 *
 * Differences from the SQLite store, by design:
 * - `releaseAllLeases` is a no-op: other live nodes hold leases on a shared store, and the
 *   leases of a node that died simply expire.
 * - Lease, due and idempotency times come from the database clock, so nodes agree on them.
 * - `onWake` delivers LISTEN/NOTIFY hints from other nodes (`ferry_jobs` after an accept left
 *   jobs for a claim, `ferry_notifications` after a completion left due notifications, or a
 *   redelivery, `ferry_cancels` after a cancel of a running job; each suffixed with the store's schema, see
 *   Db.channel) so idle runners and senders need not wait for a poll. A node's own NOTIFYs are
 *   not delivered to it: it wakes its runner and sender directly.
 * - Handoffs: see accept.ts (jobs, under the cross-node instance limit), complete.ts
 *   (notifications) and in-flight.ts (this node's overlapping statements). Job handoffs can be
 *   switched off in one place, `capabilities.handsOffJobs`.
 */
import type { StoredProgress } from '../../async/progress.js';
import type {
  AcceptInput,
  Accepted,
  CancelAnswer,
  ClaimedJob,
  DeliveryFilter,
  DeliveryListing,
  DeliveryRecord,
  DueNotification,
  EventListOptions,
  RedeliverOutcome,
  EventRecord,
  Handoff,
  JobOutcome,
  NotificationOffer,
  Page,
  StoredResult,
} from '../async.js';
import type { PollRecorded, PollSchedule, PollSlice, SnapshotEntry } from '../changes.js';
import type { Instance, InstancePatch, NewInstance, Organization, Store, StoreCapabilities, User } from '../store.js';
import * as accept from './accept.js';
import * as changes from './changes.js';
import * as claim from './claim.js';
import * as complete from './complete.js';
import { cancelEvent } from './cancel.js';
import { CANCELS_CHANNEL, Db, JOBS_CHANNEL, NOTIFICATIONS_CHANNEL, type DbOptions } from './db.js';
import { InFlight } from './in-flight.js';
import * as events from './events.js';
import * as identity from './identity.js';
import { WakeListener } from './listen.js';
import { migrate } from './migrations.js';
import * as notifications from './notifications.js';
import * as operations from './operations.js';
import type { OperationalCounts, SchemaStatus } from '../operations.js';
import * as tags from './tags.js';

/** `url`: a postgres:// URL; `schema`: created if missing, every connection uses it; `poolSize` (default 10). */
export type PostgresOptions = DbOptions;

export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = { name: 'postgres', shared: true, handsOffJobs: true };
  private readonly db: Db;
  private readonly wakes: WakeListener;
  private readonly inFlight = new InFlight();

  constructor(options: PostgresOptions) {
    this.db = new Db(options);
    this.wakes = new WakeListener(() => this.db.dedicatedClient(), this.db.wakeToken);
  }

  async migrate(): Promise<void> {
    await migrate(this.db);
  }

  schemaStatus(): Promise<SchemaStatus> {
    return operations.schemaStatus(this.db);
  }

  operationalCounts(): Promise<OperationalCounts> {
    return operations.operationalCounts(this.db);
  }

  releaseLeases(owner: string, jobIds: number[], notificationIds: number[]): Promise<void> {
    return operations.releaseLeases(this.db, owner, jobIds, notificationIds);
  }

  async close(): Promise<void> {
    await this.wakes.close();
    await this.db.close();
  }

  /**
   * Calls `fn` when another node (or this one) accepted jobs or made notifications due; a hint
   * only, keep polling. Returns the unsubscribe function.
   */
  onWake(channel: 'jobs' | 'notifications' | 'changes' | 'cancels', fn: () => void): () => void {
    const name =
      channel === 'jobs' ? JOBS_CHANNEL : channel === 'cancels' ? CANCELS_CHANNEL : channel === 'changes' ? changes.CHANGES_CHANNEL : NOTIFICATIONS_CHANNEL;
    return this.wakes.listen(this.db.channel(name), fn);
  }

  // ---- identity, instances, settings ----------------------------------------------------------

  countOrganizations(): Promise<number> {
    return identity.countOrganizations(this.db);
  }
  createOrganization(input: { name: string; secretHash: string }): Promise<Organization> {
    return identity.createOrganization(this.db, input);
  }
  createUser(input: {
    organizationId: number;
    emailAddress: string;
    firstName: string;
    lastName: string;
    secretHash: string;
  }): Promise<User> {
    return identity.createUser(this.db, input);
  }
  findOrganizationBySecretHash(secretHash: string): Promise<Organization | null> {
    return identity.findOrganizationBySecretHash(this.db, secretHash);
  }
  findUserBySecretHash(secretHash: string): Promise<User | null> {
    return identity.findUserBySecretHash(this.db, secretHash);
  }
  getUser(id: number): Promise<User | null> {
    return identity.getUser(this.db, id);
  }
  getOrganizationByName(name: string): Promise<Organization | null> {
    return identity.getOrganizationByName(this.db, name);
  }
  setSecretHash(kind: 'organization' | 'user', id: number, secretHash: string): Promise<boolean> {
    return identity.setSecretHash(this.db, kind, id, secretHash);
  }
  createInstance(input: NewInstance): Promise<Instance> {
    return identity.createInstance(this.db, input);
  }
  getInstance(organizationId: number, id: number): Promise<Instance | null> {
    return identity.getInstance(this.db, organizationId, id);
  }
  findInstanceByTokenHash(tokenHash: string): Promise<Instance | null> {
    return identity.findInstanceByTokenHash(this.db, tokenHash);
  }
  listInstances(organizationId: number, filter?: { elementKey?: string; tags?: string[] }): Promise<Instance[]> {
    return identity.listInstances(this.db, organizationId, filter);
  }
  updateInstance(organizationId: number, id: number, patch: InstancePatch): Promise<Instance | null> {
    return identity.updateInstance(this.db, organizationId, id, patch);
  }
  deleteInstance(organizationId: number, id: number): Promise<boolean> {
    return identity.deleteInstance(this.db, organizationId, id);
  }
  allInstances(): Promise<Instance[]> {
    return identity.allInstances(this.db);
  }
  getSettings(organizationId: number): Promise<Record<string, string>> {
    return identity.getSettings(this.db, organizationId);
  }
  setSettings(organizationId: number, settings: Record<string, string>): Promise<void> {
    return identity.setSettings(this.db, organizationId, settings);
  }

  // ---- tags -------------------------------------------------------------------------------------

  getTags(instanceId: number, paths: string[]): Promise<Map<string, string[]>> {
    return tags.getTags(this.db, instanceId, paths);
  }
  setTags(instanceId: number, path: string, list: string[]): Promise<void> {
    return tags.setTags(this.db, instanceId, path, list);
  }
  moveTags(instanceId: number, from: string, to: string): Promise<void> {
    return tags.moveTags(this.db, instanceId, from, to);
  }
  copyTags(instanceId: number, from: string, to: string): Promise<void> {
    return tags.copyTags(this.db, instanceId, from, to);
  }
  deleteTags(instanceId: number, path: string): Promise<void> {
    return tags.deleteTags(this.db, instanceId, path);
  }

  // ---- asynchronous requests ----------------------------------------------------------------------

  acceptEvents(inputs: AcceptInput[], handoff?: Handoff<AcceptInput>): Promise<Accepted[]> {
    return accept.acceptEvents(this.db, this.inFlight, inputs, this.capabilities.handsOffJobs ? handoff : undefined);
  }
  claimJobs(owner: string, limit: number, leaseMs: number, perInstance: number): Promise<ClaimedJob[]> {
    return this.inFlight.claim(owner, () => claim.claimJobs(this.db, owner, limit, leaseMs, perInstance));
  }
  renewLeases(owner: string, eventIds: number[], leaseMs: number): Promise<void> {
    return claim.renewLeases(this.db, owner, eventIds, leaseMs);
  }
  /**
   * A no-op on a shared store: the other nodes' leases are live, and releasing them would run
   * their jobs twice. A dead node's leases expire on their own (FERRY_LEASE).
   */
  async releaseAllLeases(): Promise<number> {
    return 0;
  }
  /** `owner` is not checked, as in SQLite: the first completion of a job wins, whoever ran it. */
  completeJobs(_owner: string, outcomes: JobOutcome[], handoff?: Handoff<NotificationOffer>): Promise<DueNotification[]> {
    return complete.completeJobs(this.db, outcomes, handoff);
  }
  claimNotifications(
    _owner: string,
    limit: number,
    leaseMs: number,
    excludeSubscriptions?: number[],
  ): Promise<DueNotification[]> {
    return notifications.claimNotifications(this.db, limit, leaseMs, excludeSubscriptions);
  }
  releaseNotifications(notificationIds: number[]): Promise<void> {
    return notifications.releaseNotifications(this.db, notificationIds);
  }
  recordDeliveries(records: DeliveryRecord[]): Promise<void> {
    return notifications.recordDeliveries(this.db, records);
  }
  nextNotificationDue(): Promise<Date | null> {
    return notifications.nextNotificationDue(this.db);
  }
  listDeliveries(
    organizationId: number,
    filter: DeliveryFilter,
    options: { limit: number; cursor?: string },
  ): Promise<Page<DeliveryListing>> {
    return notifications.listDeliveries(this.db, organizationId, filter, options);
  }
  redeliver(organizationId: number, filter: DeliveryFilter): Promise<number> {
    return notifications.redeliver(this.db, organizationId, filter);
  }
  redeliverNotification(organizationId: number, notificationId: number): Promise<RedeliverOutcome> {
    return notifications.redeliverNotification(this.db, organizationId, notificationId);
  }
  getEvent(organizationId: number, eventId: number): Promise<EventRecord | null> {
    return events.getEvent(this.db, organizationId, eventId);
  }
  listEvents(organizationId: number, options: EventListOptions): Promise<Page<EventRecord>> {
    return events.listEvents(this.db, organizationId, options);
  }
  getResult(organizationId: number, eventId: number): Promise<StoredResult | null> {
    return events.getResult(this.db, organizationId, eventId);
  }
  async cancelledAmong(eventIds: number[]): Promise<number[]> {
    if (!eventIds.length) return [];
    const rows = await this.db.query(
      "SELECT id FROM events WHERE id = ANY($1::bigint[]) AND execution IN ('cancelling', 'cancelled')",
      [eventIds],
      'cancelled_among',
    );
    return rows.map((r) => Number(r.id));
  }
  async recordProgress(eventId: number, progress: StoredProgress): Promise<void> {
    await this.db.query(
      "UPDATE events SET progress = $2 WHERE id = $1 AND execution IN ('running', 'cancelling')",
      [eventId, JSON.stringify(progress)],
      'record_progress',
    );
  }
  cancelEvent(organizationId: number, eventId: number, pending: (instanceId: number) => JobOutcome): Promise<CancelAnswer | null> {
    return cancelEvent(this.db, organizationId, eventId, pending);
  }
  async journalGet(eventId: number, key: string): Promise<string | null> {
    const rows = await this.db.query('SELECT value FROM job_journal WHERE event_id = $1 AND key = $2', [eventId, key], 'journal_get');
    return rows.length ? (rows[0].value as string) : null;
  }

  async journalPut(eventId: number, key: string, value: string): Promise<void> {
    await this.db.query(
      `INSERT INTO job_journal (event_id, key, value) VALUES ($1, $2, $3)
       ON CONFLICT (event_id, key) DO UPDATE SET value = excluded.value`,
      [eventId, key, value],
      'journal_put',
    );
  }

  async spooledJobFiles(): Promise<string[]> {
    const rows = await this.db.query(
      `SELECT f FROM (SELECT (request::jsonb #>> '{spool,file}') AS f FROM jobs WHERE request LIKE '%"spool":%') s WHERE f IS NOT NULL`,
    );
    return rows.map((r) => r.f as string);
  }

  purgeExpired(now: Date, idempotencyBefore: Date): Promise<void> {
    return events.purgeExpired(this.db, now, idempotencyBefore);
  }
  asyncCounts(): Promise<{ jobs: number; events: number; notificationsPending: number }> {
    return events.asyncCounts(this.db);
  }

  // ---- change polling (store/changes.ts) -----------------------------------------------------------

  schedulePolls(input: { instanceId: number; organizationId: number; intervalMs: number; watch: string }): Promise<void> {
    return changes.schedulePolls(this.db, input);
  }
  unschedulePolls(instanceId: number): Promise<void> {
    return changes.unschedulePolls(this.db, instanceId);
  }
  scheduledInstances(): Promise<number[]> {
    return changes.scheduledInstances(this.db);
  }
  claimPolls(owner: string, limit: number, leaseMs: number, exclude: number[]): Promise<PollSchedule[]> {
    return changes.claimPolls(this.db, owner, limit, leaseMs, exclude);
  }
  nextPollDue(owner: string, exclude: number[]): Promise<Date | null> {
    return changes.nextPollDue(this.db, owner, exclude);
  }
  readSnapshot(instanceId: number, after: string | null, limit: number): Promise<SnapshotEntry[]> {
    return changes.readSnapshot(this.db, instanceId, after, limit);
  }
  recordPoll(owner: string, instanceId: number, slice: PollSlice): Promise<PollRecorded | null> {
    return changes.recordPoll(this.db, owner, instanceId, slice);
  }
  releasePolls(owner: string): Promise<void> {
    return changes.releasePolls(this.db, owner);
  }
  postponePoll(owner: string, instanceId: number, nextPollAt: Date, leaseMs: number): Promise<void> {
    return changes.postponePoll(this.db, owner, instanceId, nextPollAt, leaseMs);
  }
}
