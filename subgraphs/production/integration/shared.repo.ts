import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';

/** What several integration repositories share: what an upsert counts, the advisory lock, line and product checks. */

/**
 * What an upsert created and changed. Upserts compare before they write (`is distinct from`): an unchanged
 * re-sync touches no row, and what they return is exactly what was created and what was changed.
 */
export interface Counts {
  created: number;
  updated: number;
}

/**
 * Runs `fn` holding a session advisory lock on one connection, or returns undefined at once when another
 * session holds it. A crashed holder's lock goes with its connection, so nothing is left locked.
 */
export async function withTryLock<T>(
  db: Db,
  key: string,
  fn: () => Promise<T>,
): Promise<{ ran: true; value: T } | { ran: false }> {
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_lock(hashtextextended(${key}, 0)) as ok`.execute(
      conn,
    );
    if (!rows[0]?.ok) return { ran: false as const };
    try {
      return { ran: true as const, value: await fn() };
    } finally {
      await sql`select pg_advisory_unlock(hashtextextended(${key}, 0))`.execute(conn);
    }
  });
}

/**
 * Products an order names but the catalogue lacks are added with their code as name (the ERP material sync names them).
 */
export async function ensureProducts(db: Db, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const r = await sql`insert into production.products (id, name)
    select p, p from unnest(${[...new Set(ids)]}::text[]) as p on conflict (id) do nothing`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

export async function lineExists(db: Db, lineId: string): Promise<boolean> {
  return !!(await db.selectFrom('production.lines').select('id').where('id', '=', lineId).executeTakeFirst());
}
