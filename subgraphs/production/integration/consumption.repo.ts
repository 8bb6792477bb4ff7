import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import type { ConsumptionRecord } from '../../../lib/connectors/mes/types.ts';
import { idb, type ErpPostingRow } from './tables.ts';
import type { Counts } from './shared.repo.ts';

/** Material consumed by work orders: synced from the MES or the ERP, and goods issues posted through the hub. */

// ---- material consumption
export async function upsertConsumption(
  db: Db,
  workOrderId: string,
  rows: ConsumptionRecord[],
  system: string,
): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const c = <K extends keyof ConsumptionRecord>(k: K) => rows.map((r) => r[k]);
  const { rows: out } = await sql<{ inserted: boolean }>`
    insert into production.material_consumption as m (source_system, work_order_id, external_id, material_id, quantity,
      unit, lot, consumed_at)
    select ${system}, ${workOrderId}::uuid, * from unnest(${c('externalId')}::text[], ${c('materialId')}::text[],
      ${c('quantity')}::numeric[], ${c('unit')}::text[],
      ${c('lot')}::text[], ${rows.map((r) => r.consumedAt.toISOString())}::timestamptz[])
    on conflict (source_system, external_id) do update set
      work_order_id = excluded.work_order_id, material_id = excluded.material_id, quantity = excluded.quantity,
      unit = excluded.unit,
      lot = excluded.lot, consumed_at = excluded.consumed_at, updated_at = now()
    where (m.work_order_id, m.material_id, m.quantity, m.unit, m.lot, m.consumed_at)
      is distinct from (excluded.work_order_id, excluded.material_id, excluded.quantity, excluded.unit, excluded.lot,
        excluded.consumed_at)
    returning (xmax = 0) as inserted`.execute(db);
  return { created: out.filter((x) => x.inserted).length, updated: out.filter((x) => !x.inserted).length };
}

// ---- goods issues posted through the hub
export interface NewPosting {
  idempotencyKey: string;
  system: string;
  workOrderId: string;
  materialId: string;
  quantity: number;
  unit: string;
  lot: string | null;
  requestedBy: string;
}

/** Reserves a key for a goods issue (its own short transaction), or returns what the key already holds. */
export async function reservePosting(
  db: Db,
  p: NewPosting,
): Promise<{ reserved: true } | { reserved: false; row: ErpPostingRow }> {
  const inserted = await idb(db)
    .insertInto('production.erpPostings')
    .values(p)
    .onConflict((oc) => oc.column('idempotencyKey').doNothing())
    .returning('idempotencyKey')
    .executeTakeFirst();
  if (inserted) return { reserved: true };
  return {
    reserved: false,
    row: await idb(db)
      .selectFrom('production.erpPostings')
      .selectAll()
      .where('idempotencyKey', '=', p.idempotencyKey)
      .executeTakeFirstOrThrow(),
  };
}

/** The ERP refused the goods issue (nothing was posted): the key is free again. */
export const releasePosting = (db: Db, key: string) =>
  idb(db)
    .deleteFrom('production.erpPostings')
    .where('idempotencyKey', '=', key)
    .where('state', '=', 'POSTING')
    .execute();

export const markPostingUncertain = (db: Db, key: string, error: string) =>
  idb(db)
    .updateTable('production.erpPostings')
    .set({ state: 'UNCERTAIN', lastError: error })
    .where('idempotencyKey', '=', key)
    .execute();

/** The posted goods issue as a consumption record of its order, and the key marked POSTED, together. */
export async function recordPosting(
  db: Db,
  key: string,
  c: ConsumptionRecord & { workOrderId: string; system: string; documentId: string },
) {
  return db.transaction().execute(async (tx) => {
    const t = idb(tx as unknown as Db);
    const row = await t
      .insertInto('production.materialConsumption')
      .values({
        sourceSystem: c.system,
        externalId: c.externalId,
        workOrderId: c.workOrderId,
        materialId: c.materialId,
        quantity: c.quantity,
        unit: c.unit,
        lot: c.lot,
        consumedAt: c.consumedAt,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await t
      .updateTable('production.erpPostings')
      .set({ state: 'POSTED', documentId: c.documentId, consumptionId: row.id, lastError: null })
      .where('idempotencyKey', '=', key)
      .execute();
    return row;
  });
}

export const consumptionById = (db: Db, id: string) =>
  idb(db).selectFrom('production.materialConsumption').selectAll().where('id', '=', id).executeTakeFirst();

export function listConsumption(
  db: Db,
  f: { workOrderId?: string | null; materialId?: string | null },
  scope: ScopeFilter,
  page: PageArgs,
) {
  let q = idb(db)
    .selectFrom('production.materialConsumption as c')
    .innerJoin('production.workOrders as w', 'w.id', 'c.workOrderId')
    .selectAll('c');
  if (f.workOrderId) q = q.where('c.workOrderId', '=', f.workOrderId);
  if (f.materialId) q = q.where('c.materialId', '=', f.materialId);
  if (scope.lineIds) q = q.where('w.lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'c.consumedAt', idCol: 'c.id' });
}
