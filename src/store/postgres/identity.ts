/**
 * Organizations, users, instances and account settings on PostgreSQL: plain rows, mapped to
 * the store's types exactly as the SQLite store maps them (JSON text for tags and
 * configuration, millisecond times to Date).
 *
 * Each export implements the `Store` method of the same name (documented in store.ts and
 * async.ts), taking the connection layer as its first argument.
 */
import type { Instance, InstancePatch, NewInstance, Organization, User } from '../store.js';
import { NOW_MS, run, type Db, type Row } from './db.js';
import { serialiseRetiredKeys, toInstance, toOrganization, toUser } from '../rows.js';

const one = <T>(rows: Row[], map: (r: Row) => T): T | null => (rows.length ? map(rows[0]) : null);

export async function countOrganizations(db: Db): Promise<number> {
  return (await db.query('SELECT count(*) AS n FROM organizations'))[0].n;
}

export async function createOrganization(db: Db, input: { name: string; secretHash: string }): Promise<Organization> {
  const rows = await db.query(
    `INSERT INTO organizations (name, secret_hash, created_at) VALUES ($1, $2, ${NOW_MS}) RETURNING *`,
    [input.name, input.secretHash],
  );
  return toOrganization(rows[0]);
}

export async function createUser(
  db: Db,
  input: { organizationId: number; emailAddress: string; firstName: string; lastName: string; secretHash: string },
): Promise<User> {
  const rows = await db.query(
    `INSERT INTO users (organization_id, email, first_name, last_name, secret_hash, created_at)
     VALUES ($1, $2, $3, $4, $5, ${NOW_MS}) RETURNING *`,
    [input.organizationId, input.emailAddress, input.firstName, input.lastName, input.secretHash],
  );
  return toUser(rows[0]);
}

export async function findOrganizationBySecretHash(db: Db, secretHash: string): Promise<Organization | null> {
  return one(await db.query('SELECT * FROM organizations WHERE secret_hash = $1', [secretHash], 'org_by_secret'), toOrganization);
}

export async function findUserBySecretHash(db: Db, secretHash: string): Promise<User | null> {
  return one(await db.query('SELECT * FROM users WHERE secret_hash = $1', [secretHash], 'user_by_secret'), toUser);
}

export async function getUser(db: Db, id: number): Promise<User | null> {
  return one(await db.query('SELECT * FROM users WHERE id = $1', [id], 'user_by_id'), toUser);
}

export async function getOrganizationByName(db: Db, name: string): Promise<Organization | null> {
  return one(await db.query('SELECT * FROM organizations WHERE name = $1', [name]), toOrganization);
}

export async function setSecretHash(db: Db, kind: 'organization' | 'user', id: number, secretHash: string): Promise<boolean> {
  const table = kind === 'organization' ? 'organizations' : 'users';
  const res = await db.pool.query(`UPDATE ${table} SET secret_hash = $1 WHERE id = $2`, [secretHash, id]);
  return (res.rowCount ?? 0) > 0;
}

// ---- instances ----------------------------------------------------------------------------

export async function createInstance(db: Db, input: NewInstance): Promise<Instance> {
  const rows = await db.query(
    `INSERT INTO instances (organization_id, user_id, element_key, name, tags, configuration, token_hash, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, ${NOW_MS}, ${NOW_MS}) RETURNING *`,
    [
      input.organizationId,
      input.userId,
      input.elementKey,
      input.name,
      JSON.stringify(input.tags),
      JSON.stringify(input.configuration),
      input.tokenHash,
    ],
  );
  return toInstance(rows[0]);
}

export async function getInstance(db: Db, organizationId: number, id: number): Promise<Instance | null> {
  return one(
    await db.query('SELECT * FROM instances WHERE organization_id = $1 AND id = $2', [organizationId, id], 'instance_get'),
    toInstance,
  );
}

export async function findInstanceByTokenHash(db: Db, tokenHash: string): Promise<Instance | null> {
  return one(await db.query('SELECT * FROM instances WHERE token_hash = $1', [tokenHash], 'instance_by_token'), toInstance);
}

export async function listInstances(
  db: Db,
  organizationId: number,
  filter: { elementKey?: string; tags?: string[] } = {},
): Promise<Instance[]> {
  const rows = filter.elementKey
    ? await db.query('SELECT * FROM instances WHERE organization_id = $1 AND element_key = $2 ORDER BY id', [
        organizationId,
        filter.elementKey,
      ])
    : await db.query('SELECT * FROM instances WHERE organization_id = $1 ORDER BY id', [organizationId]);
  const wanted = filter.tags ?? [];
  return rows.map(toInstance).filter((i) => wanted.every((t) => i.tags.includes(t)));
}

export async function updateInstance(
  db: Db,
  organizationId: number,
  id: number,
  patch: InstancePatch,
): Promise<Instance | null> {
  const sets: string[] = [];
  const values: unknown[] = [];
  const set = (column: string, value: unknown) => {
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  };
  if (patch.name !== undefined) set('name', patch.name);
  if (patch.tags !== undefined) set('tags', JSON.stringify(patch.tags));
  if (patch.configuration !== undefined) set('configuration', JSON.stringify(patch.configuration));
  if (patch.retiredSignatureKeys !== undefined) set('retired_signature_keys', serialiseRetiredKeys(patch.retiredSignatureKeys));
  if (patch.disabled !== undefined) set('disabled', patch.disabled);
  if (patch.valid !== undefined) set('valid', patch.valid);
  sets.push(`updated_at = ${NOW_MS}`);
  values.push(organizationId, id);
  const rows = await db.query(
    `UPDATE instances SET ${sets.join(', ')} WHERE organization_id = $${values.length - 1} AND id = $${values.length} RETURNING *`,
    values,
  );
  return one(rows, toInstance);
}

export async function deleteInstance(db: Db, organizationId: number, id: number): Promise<boolean> {
  return db.tx(async (c) => {
    const gone = await run(c, 'DELETE FROM instances WHERE organization_id = $1 AND id = $2 RETURNING id', [organizationId, id]);
    if (gone.length) await run(c, 'DELETE FROM document_tags WHERE instance_id = $1', [id]);
    return gone.length > 0;
  });
}

export async function allInstances(db: Db): Promise<Instance[]> {
  return (await db.query('SELECT * FROM instances ORDER BY id')).map(toInstance);
}

// ---- settings -----------------------------------------------------------------------------

export async function getSettings(db: Db, organizationId: number): Promise<Record<string, string>> {
  const rows = await db.query('SELECT key, value FROM account_settings WHERE organization_id = $1', [organizationId]);
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

export async function setSettings(db: Db, organizationId: number, settings: Record<string, string>): Promise<void> {
  const entries = Object.entries(settings);
  if (!entries.length) return;
  await db.query(
    `INSERT INTO account_settings (organization_id, key, value)
     SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS u(k, v)
     ON CONFLICT (organization_id, key) DO UPDATE SET value = excluded.value`,
    [organizationId, entries.map((e) => e[0]), entries.map((e) => e[1])],
  );
}
