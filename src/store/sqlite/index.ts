/**
 * The SQLite store (better-sqlite3@12, WAL): Ferry's zero set-up default. One process owns the
 * database file (with up to two connections: the API's and the runner thread's); better-sqlite3
 * is synchronous, so every method runs to completion on its thread, and write transactions
 * take the write lock at BEGIN, so they never interleave. Durability: `normal` (WAL,
 * synchronous=NORMAL: survives a process crash) or `fsync` (synchronous=FULL: survives power
 * loss). Group commit happens above the store: `acceptEvents` takes a whole batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Durability } from '../../config.js';
import type { Instance, InstancePatch, NewInstance, Organization, Store, StoreCapabilities, User } from '../store.js';
import { descendantRange } from '../store.js';
import { MIGRATIONS } from './migrations.js';
import { serialiseRetiredKeys, toInstance, toOrganization, toUser } from '../rows.js';
import { SqliteAsyncStore, SQLITE_BUSY_TIMEOUT_MS } from './async.js';
import { SqliteChanges } from './changes.js';
import type { PollRecorded, PollSchedule, PollSlice, SnapshotEntry } from '../changes.js';
import { BACKSTOP_PAGES, Checkpointer } from './checkpoint.js';
import { WriteLock } from './write-lock.js';
import * as operations from './operations.js';
import type { OperationalCounts, SchemaStatus } from '../operations.js';

type Row = Record<string, any>;

export interface SqliteOptions {
  /** Database file; ":memory:" for tests that need no file. */
  file: string;
  durability: Durability;
  /**
   * false for a second connection in the same process (the runner thread's): the first one's
   * checkpointer already serves the file; this one only raises its own auto-checkpoint threshold.
   */
  checkpoints?: boolean;
  /** The other connection's WriteLock cell (the runner thread's store takes the API thread's). */
  writeLock?: Int32Array;
  /** Milliseconds between two checkpoints at most (FERRY_CHECKPOINT_INTERVAL; 250 by default). */
  checkpointMs?: number;
}

export class SqliteStore extends SqliteAsyncStore implements Store {
  readonly capabilities: StoreCapabilities = { name: 'sqlite', shared: false, handsOffJobs: true };

  constructor(options: SqliteOptions) {
    if (options.file !== ':memory:') fs.mkdirSync(path.dirname(options.file), { recursive: true });
    const db = new Database(options.file);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.durability === 'fsync' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    // A few ms at most on this thread; longer waits for a lock happen in write(), asynchronously.
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    super(db, new WriteLock(options.writeLock));
    if (options.file === ':memory:') return;
    if (options.checkpoints === false) db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    else this.checkpointer = new Checkpointer(db, options.file, this.writeLock.cell, options.checkpointMs);
  }

  private readonly checkpointer: Checkpointer | null = null;
  private changesStore: SqliteChanges | null = null;

  // ---- change polling (store/changes.ts, sqlite/changes.ts) ------------------------------------

  private get changes(): SqliteChanges {
    return (this.changesStore ??= new SqliteChanges(this.db, (fn) => this.write(fn)));
  }
  schedulePolls(input: { instanceId: number; organizationId: number; intervalMs: number; watch: string }): Promise<void> {
    return this.changes.schedulePolls(input);
  }
  unschedulePolls(instanceId: number): Promise<void> {
    return this.changes.unschedulePolls(instanceId);
  }
  scheduledInstances(): Promise<number[]> {
    return this.changes.scheduledInstances();
  }
  claimPolls(owner: string, limit: number, leaseMs: number, exclude: number[]): Promise<PollSchedule[]> {
    return this.changes.claimPolls(owner, limit, leaseMs, exclude);
  }
  nextPollDue(owner: string, exclude: number[]): Promise<Date | null> {
    return this.changes.nextPollDue(owner, exclude);
  }
  readSnapshot(instanceId: number, after: string | null, limit: number): Promise<SnapshotEntry[]> {
    return this.changes.readSnapshot(instanceId, after, limit);
  }
  recordPoll(owner: string, instanceId: number, slice: PollSlice): Promise<PollRecorded | null> {
    return this.changes.recordPoll(owner, instanceId, slice);
  }
  releasePolls(owner: string): Promise<void> {
    return this.changes.releasePolls(owner);
  }
  postponePoll(owner: string, instanceId: number, nextPollAt: Date, leaseMs: number): Promise<void> {
    return this.changes.postponePoll(owner, instanceId, nextPollAt, leaseMs);
  }

  async migrate(): Promise<void> {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await this.write(() => {
        this.db.exec(m.sql);
        this.db.pragma(`user_version = ${m.version}`);
      });
    }
  }

  // ---- operations (store/operations.ts) -------------------------------------------------------

  async schemaStatus(): Promise<SchemaStatus> {
    return operations.schemaStatus(this.db);
  }

  async operationalCounts(): Promise<OperationalCounts> {
    return operations.operationalCounts(this.db);
  }

  async releaseLeases(owner: string, jobIds: number[], notificationIds: number[]): Promise<void> {
    if (!jobIds.length && !notificationIds.length) return;
    await this.write(() => operations.releaseLeases(this.db, owner, jobIds, notificationIds));
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }

  // ---- identity -------------------------------------------------------------------------

  async countOrganizations(): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM organizations').get() as Row).n;
  }

  async createOrganization(input: { name: string; secretHash: string }): Promise<Organization> {
    const r = (await this.write(() =>
      this.db
        .prepare('INSERT INTO organizations (name, secret_hash, created_at) VALUES (?, ?, ?) RETURNING *')
        .get(input.name, input.secretHash, Date.now()),
    )) as Row;
    return toOrganization(r);
  }

  async createUser(input: {
    organizationId: number;
    emailAddress: string;
    firstName: string;
    lastName: string;
    secretHash: string;
  }): Promise<User> {
    const r = (await this.write(() =>
      this.db
        .prepare(
          `INSERT INTO users (organization_id, email, first_name, last_name, secret_hash, created_at)
           VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
        )
        .get(input.organizationId, input.emailAddress, input.firstName, input.lastName, input.secretHash, Date.now()),
    )) as Row;
    return toUser(r);
  }

  async findOrganizationBySecretHash(secretHash: string): Promise<Organization | null> {
    const r = this.stmt('SELECT * FROM organizations WHERE secret_hash = ?').get(secretHash) as Row | undefined;
    return r ? toOrganization(r) : null;
  }

  async findUserBySecretHash(secretHash: string): Promise<User | null> {
    const r = this.stmt('SELECT * FROM users WHERE secret_hash = ?').get(secretHash) as Row | undefined;
    return r ? toUser(r) : null;
  }

  async getUser(id: number): Promise<User | null> {
    const r = this.stmt('SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
    return r ? toUser(r) : null;
  }

  async getOrganizationByName(name: string): Promise<Organization | null> {
    const r = this.stmt('SELECT * FROM organizations WHERE name = ?').get(name) as Row | undefined;
    return r ? toOrganization(r) : null;
  }

  async setSecretHash(kind: 'organization' | 'user', id: number, secretHash: string): Promise<boolean> {
    const table = kind === 'organization' ? 'organizations' : 'users';
    return this.write(() => this.db.prepare(`UPDATE ${table} SET secret_hash = ? WHERE id = ?`).run(secretHash, id).changes > 0);
  }

  // ---- instances ------------------------------------------------------------------------

  async createInstance(input: NewInstance): Promise<Instance> {
    const now = Date.now();
    const r = (await this.write(() => this.db
      .prepare(
        `INSERT INTO instances (organization_id, user_id, element_key, name, tags, configuration, token_hash,
           created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(
        input.organizationId,
        input.userId,
        input.elementKey,
        input.name,
        JSON.stringify(input.tags),
        JSON.stringify(input.configuration),
        input.tokenHash,
        now,
        now,
      ))) as Row;
    return toInstance(r);
  }

  async getInstance(organizationId: number, id: number): Promise<Instance | null> {
    const r = this.stmt('SELECT * FROM instances WHERE organization_id = ? AND id = ?').get(organizationId, id) as
      | Row
      | undefined;
    return r ? toInstance(r) : null;
  }

  async findInstanceByTokenHash(tokenHash: string): Promise<Instance | null> {
    const r = this.stmt('SELECT * FROM instances WHERE token_hash = ?').get(tokenHash) as Row | undefined;
    return r ? toInstance(r) : null;
  }

  async listInstances(organizationId: number, filter: { elementKey?: string; tags?: string[] } = {}): Promise<Instance[]> {
    const rows = (
      filter.elementKey
        ? this.stmt('SELECT * FROM instances WHERE organization_id = ? AND element_key = ? ORDER BY id').all(
            organizationId,
            filter.elementKey,
          )
        : this.stmt('SELECT * FROM instances WHERE organization_id = ? ORDER BY id').all(organizationId)
    ) as Row[];
    const wanted = filter.tags ?? [];
    return rows.map(toInstance).filter((i) => wanted.every((t) => i.tags.includes(t)));
  }

  async updateInstance(organizationId: number, id: number, patch: InstancePatch): Promise<Instance | null> {
    const sets: string[] = [];
    const values: unknown[] = [];
    if (patch.name !== undefined) sets.push('name = ?'), values.push(patch.name);
    if (patch.tags !== undefined) sets.push('tags = ?'), values.push(JSON.stringify(patch.tags));
    if (patch.configuration !== undefined) sets.push('configuration = ?'), values.push(JSON.stringify(patch.configuration));
    if (patch.retiredSignatureKeys !== undefined) sets.push('retired_signature_keys = ?'), values.push(serialiseRetiredKeys(patch.retiredSignatureKeys));
    if (patch.disabled !== undefined) sets.push('disabled = ?'), values.push(patch.disabled ? 1 : 0);
    if (patch.valid !== undefined) sets.push('valid = ?'), values.push(patch.valid ? 1 : 0);
    sets.push('updated_at = ?');
    values.push(Date.now());
    const r = (await this.write(() =>
      this.db
        .prepare(`UPDATE instances SET ${sets.join(', ')} WHERE organization_id = ? AND id = ? RETURNING *`)
        .get(...values, organizationId, id),
    )) as Row | undefined;
    return r ? toInstance(r) : null;
  }

  async deleteInstance(organizationId: number, id: number): Promise<boolean> {
    return this.write(() => {
      const n = this.db.prepare('DELETE FROM instances WHERE organization_id = ? AND id = ?').run(organizationId, id).changes;
      if (n > 0) this.db.prepare('DELETE FROM document_tags WHERE instance_id = ?').run(id);
      return n > 0;
    });
  }

  async allInstances(): Promise<Instance[]> {
    return (this.db.prepare('SELECT * FROM instances ORDER BY id').all() as Row[]).map(toInstance);
  }

  // ---- job journal (store.ts JobJournalStore) --------------------------------------------

  async journalGet(eventId: number, key: string): Promise<string | null> {
    const r = this.stmt('SELECT value FROM job_journal WHERE event_id = ? AND key = ?').get(eventId, key) as Row | undefined;
    return r ? (r.value as string) : null;
  }

  async journalPut(eventId: number, key: string, value: string): Promise<void> {
    await this.write(() => {
      this.stmt('INSERT OR REPLACE INTO job_journal (event_id, key, value) VALUES (?, ?, ?)').run(eventId, key, value);
    });
  }

  // ---- tags -----------------------------------------------------------------------------

  async getTags(instanceId: number, paths: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (paths.length === 1) {
      const r = this.stmt('SELECT tags FROM document_tags WHERE instance_id = ? AND path = ?').get(instanceId, paths[0]) as Row | undefined;
      if (r) out.set(paths[0], JSON.parse(r.tags));
      return out;
    }
    // Pages and bulk exports ask for up to a thousand paths at once: one statement for them all,
    // and none when the instance has no tags at all (most have none).
    if (paths.length === 0 || !this.stmt('SELECT 1 FROM document_tags WHERE instance_id = ? LIMIT 1').get(instanceId)) return out;
    const rows = this.stmt('SELECT path, tags FROM document_tags WHERE instance_id = ? AND path IN (SELECT value FROM json_each(?))').all(
      instanceId,
      JSON.stringify(paths),
    ) as Row[];
    for (const r of rows) out.set(r.path, JSON.parse(r.tags));
    return out;
  }

  async setTags(instanceId: number, p: string, tags: string[]): Promise<void> {
    await this.write(() => {
      if (tags.length === 0) {
        this.stmt('DELETE FROM document_tags WHERE instance_id = ? AND path = ?').run(instanceId, p);
      } else {
        this.stmt('INSERT OR REPLACE INTO document_tags (instance_id, path, tags) VALUES (?, ?, ?)').run(
          instanceId,
          p,
          JSON.stringify(tags),
        );
      }
    });
  }

  private subtreeRows(instanceId: number, p: string): Row[] {
    const [lo, hi] = descendantRange(p);
    return this.db
      .prepare('SELECT path, tags FROM document_tags WHERE instance_id = ? AND (path = ? OR (path >= ? AND path < ?))')
      .all(instanceId, p, lo, hi) as Row[];
  }

  async moveTags(instanceId: number, from: string, to: string): Promise<void> {
    await this.write(() => {
      const rows = this.subtreeRows(instanceId, from);
      this.deleteSubtree(instanceId, to);
      this.deleteSubtree(instanceId, from);
      const put = this.stmt('INSERT OR REPLACE INTO document_tags (instance_id, path, tags) VALUES (?, ?, ?)');
      for (const r of rows) put.run(instanceId, to + (r.path as string).slice(from.length), r.tags);
    });
  }

  async copyTags(instanceId: number, from: string, to: string): Promise<void> {
    await this.write(() => {
      const rows = this.subtreeRows(instanceId, from);
      this.deleteSubtree(instanceId, to);
      const put = this.stmt('INSERT OR REPLACE INTO document_tags (instance_id, path, tags) VALUES (?, ?, ?)');
      for (const r of rows) put.run(instanceId, to + (r.path as string).slice(from.length), r.tags);
    });
  }

  async deleteTags(instanceId: number, p: string): Promise<void> {
    await this.write(() => this.deleteSubtree(instanceId, p));
  }

  private deleteSubtree(instanceId: number, p: string): void {
    const [lo, hi] = descendantRange(p);
    this.stmt('DELETE FROM document_tags WHERE instance_id = ? AND (path = ? OR (path >= ? AND path < ?))').run(
      instanceId,
      p,
      lo,
      hi,
    );
  }

  // ---- settings -------------------------------------------------------------------------

  async getSettings(organizationId: number): Promise<Record<string, string>> {
    const rows = this.stmt('SELECT key, value FROM account_settings WHERE organization_id = ?').all(organizationId) as Row[];
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  async setSettings(organizationId: number, settings: Record<string, string>): Promise<void> {
    const put = this.stmt('INSERT OR REPLACE INTO account_settings (organization_id, key, value) VALUES (?, ?, ?)');
    await this.write(() => {
      for (const [k, v] of Object.entries(settings)) put.run(organizationId, k, v);
    });
  }
}
