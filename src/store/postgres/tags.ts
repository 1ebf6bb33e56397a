/**
 * Document tags on PostgreSQL. A folder's descendants are the byte-wise range of
 * `descendantRange` (store.ts); `document_tags.path` is COLLATE "C" so that range means bytes,
 * whatever the database's default collation. Moves and copies run in one transaction.
 *
 * Each export implements the `Store` method of the same name (documented in store.ts and
 * async.ts), taking the connection layer as its first argument.
 */
import type pg from 'pg';
import { descendantRange } from '../store.js';
import { run, type Db } from './db.js';

const SUBTREE = 'instance_id = $1 AND (path = $2 OR (path >= $3 AND path < $4))';

export async function getTags(db: Db, instanceId: number, paths: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!paths.length) return out;
  const rows = await db.query(
    'SELECT path, tags FROM document_tags WHERE instance_id = $1 AND path = ANY($2::text[])',
    [instanceId, paths],
    'tags_get',
  );
  for (const r of rows) out.set(r.path, JSON.parse(r.tags));
  return out;
}

export async function setTags(db: Db, instanceId: number, path: string, tags: string[]): Promise<void> {
  if (tags.length === 0) {
    await db.query('DELETE FROM document_tags WHERE instance_id = $1 AND path = $2', [instanceId, path]);
  } else {
    await db.query(
      `INSERT INTO document_tags (instance_id, path, tags) VALUES ($1, $2, $3)
       ON CONFLICT (instance_id, path) DO UPDATE SET tags = excluded.tags`,
      [instanceId, path, JSON.stringify(tags)],
    );
  }
}

const subtreeArgs = (instanceId: number, path: string) => [instanceId, path, ...descendantRange(path)];

async function deleteSubtree(c: pg.PoolClient | pg.Pool, instanceId: number, path: string): Promise<void> {
  await run(c, `DELETE FROM document_tags WHERE ${SUBTREE}`, subtreeArgs(instanceId, path));
}

/** Re-roots the tags under `from` at `to`; `move` also forgets them at `from`. */
async function transplant(db: Db, instanceId: number, from: string, to: string, move: boolean): Promise<void> {
  await db.tx(async (c) => {
    const rows = await run(c, `SELECT path, tags FROM document_tags WHERE ${SUBTREE}`, subtreeArgs(instanceId, from));
    await deleteSubtree(c, instanceId, to);
    if (move) await deleteSubtree(c, instanceId, from);
    if (!rows.length) return;
    await run(
      c,
      `INSERT INTO document_tags (instance_id, path, tags) SELECT $1, p, t FROM unnest($2::text[], $3::text[]) AS u(p, t)
       ON CONFLICT (instance_id, path) DO UPDATE SET tags = excluded.tags`,
      [instanceId, rows.map((r) => to + (r.path as string).slice(from.length)), rows.map((r) => r.tags)],
    );
  });
}

export function moveTags(db: Db, instanceId: number, from: string, to: string): Promise<void> {
  return transplant(db, instanceId, from, to, true);
}

export function copyTags(db: Db, instanceId: number, from: string, to: string): Promise<void> {
  return transplant(db, instanceId, from, to, false);
}

export async function deleteTags(db: Db, instanceId: number, path: string): Promise<void> {
  await deleteSubtree(db.pool, instanceId, path);
}
