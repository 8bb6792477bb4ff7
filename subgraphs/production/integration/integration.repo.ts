import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import type { ConsumptionRecord, ScheduleRecord } from '../../../lib/connectors/mes/types.ts';
import type { LabourCostRecord, MaterialRecord } from '../../../lib/connectors/erp/types.ts';
import {
  idb,
  type ErpPostingRow,
  type OutboundUpdateRow,
  type OutboundState,
  type SyncKind,
  type SyncStatus,
  type SystemKind,
  type VarianceRow,
} from './tables.ts';

/**
 * The integration layer's SQL. Upserts compare before they write (`is distinct from`): an unchanged re-sync
 * touches no row, and what they return is exactly what was created and what was changed.
 */

export interface Counts {
  created: number;
  updated: number;
}

// ---- locks
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

// ---- sync history
export const insertSyncRun = (
  db: Db,
  r: {
    system: string;
    systemKind: SystemKind;
    kind: SyncKind;
    lineId: string | null;
    workOrderId?: string | null;
    rangeFrom?: Date | null;
    rangeTo?: Date | null;
    trigger: 'MANUAL' | 'SCHEDULED';
    requestedBy: string;
  },
) =>
  idb(db)
    .insertInto('production.syncRuns')
    .values({ ...r, workOrderId: r.workOrderId ?? null, rangeFrom: r.rangeFrom ?? null, rangeTo: r.rangeTo ?? null })
    .returning(['id', 'startedAt'])
    .executeTakeFirstOrThrow();

export const finishSyncRun = (
  db: Db,
  id: string,
  r: {
    status: SyncStatus;
    fetched: number;
    created: number;
    updated: number;
    unchanged: number;
    rejected: number;
    errors: { key: string | null; message: string }[];
    errorCount: number;
    durationMs: number;
  },
) =>
  idb(db)
    .updateTable('production.syncRuns')
    .set({ ...r, errors: JSON.stringify(r.errors), finishedAt: new Date() })
    .where('id', '=', id as never)
    .returningAll()
    .executeTakeFirstOrThrow();

export interface SyncRunFilter {
  lineId?: string | null;
  system?: string | null;
  kind?: SyncKind[] | null;
  status?: SyncStatus[] | null;
}
export function listSyncRuns(db: Db, f: SyncRunFilter, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db).selectFrom('production.syncRuns').selectAll();
  if (f.lineId) q = q.where('lineId', '=', f.lineId);
  if (f.system) q = q.where('system', '=', f.system);
  if (f.kind?.length) q = q.where('kind', 'in', f.kind);
  if (f.status?.length) q = q.where('status', 'in', f.status);
  // Line-less runs (materials, labour) are plant-wide; a line-scoped token sees only its lines' runs.
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'startedAt', idCol: 'id', desc: true });
}

// ---- work orders
/** Products an order names but the catalogue lacks are added with their code as name (the ERP material sync names them). */
export async function ensureProducts(db: Db, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const r =
    await sql`insert into production.products (id, name) select p, p from unnest(${[...new Set(ids)]}::text[]) as p on conflict (id) do nothing`.execute(
      db,
    );
  return Number(r.numAffectedRows ?? 0);
}

export async function lineExists(db: Db, lineId: string): Promise<boolean> {
  return !!(await db.selectFrom('production.lines').select('id').where('id', '=', lineId).executeTakeFirst());
}

/**
 * One statement per batch: update the orders that exist and differ, insert the ones that do not exist.
 * Actual quantity/start/end are kept when the upstream sends none (an operator may have reported them).
 */
export async function upsertWorkOrders(db: Db, rows: ScheduleRecord[], source: string): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const col = <K extends keyof ScheduleRecord>(k: K) => rows.map((r) => r[k]);
  const iso = (k: 'plannedStart' | 'plannedEnd' | 'actualStart' | 'actualEnd') =>
    rows.map((r) => r[k]?.toISOString() ?? null);
  const { rows: out } = await sql<{ created: number; updated: number }>`
    with input as (
      select i.*, r.id as recipe_id
      from unnest(${col('number')}::text[], ${col('lineId')}::text[], ${col('productId')}::text[], ${col('recipeCode')}::text[],
                  ${iso('plannedStart')}::timestamptz[], ${iso('plannedEnd')}::timestamptz[], ${col('plannedQuantity')}::int[],
                  ${col('actualQuantity')}::int[], ${iso('actualStart')}::timestamptz[], ${iso('actualEnd')}::timestamptz[],
                  ${col('status')}::text[], ${col('priority')}::smallint[])
        as i(number, line_id, product_id, recipe_code, planned_start, planned_end, planned_quantity, actual_quantity, actual_start, actual_end, status, priority)
      left join lateral (select id from production.recipes where code = i.recipe_code order by version desc limit 1) r on i.recipe_code is not null
    ),
    upd as (
      update production.work_orders w set
        line_id = i.line_id, product_id = i.product_id, recipe_id = coalesce(i.recipe_id, w.recipe_id),
        planned_start = i.planned_start, planned_end = i.planned_end, planned_quantity = i.planned_quantity,
        actual_quantity = coalesce(i.actual_quantity, w.actual_quantity), actual_start = coalesce(i.actual_start, w.actual_start),
        actual_end = coalesce(i.actual_end, w.actual_end), status = i.status, priority = i.priority, source = ${source}, updated_at = now()
      from input i
      where w.number = i.number
        and (w.line_id, w.product_id, w.recipe_id, w.planned_start, w.planned_end, w.planned_quantity, w.actual_quantity, w.actual_start, w.actual_end, w.status, w.priority, w.source)
            is distinct from
            (i.line_id, i.product_id, coalesce(i.recipe_id, w.recipe_id), i.planned_start, i.planned_end, i.planned_quantity,
             coalesce(i.actual_quantity, w.actual_quantity), coalesce(i.actual_start, w.actual_start), coalesce(i.actual_end, w.actual_end),
             i.status, i.priority::smallint, ${source}::text)
      returning 1
    ),
    ins as (
      insert into production.work_orders (number, line_id, product_id, recipe_id, planned_start, planned_end, planned_quantity, actual_quantity, actual_start, actual_end, status, priority, source)
      select number, line_id, product_id, recipe_id, planned_start, planned_end, planned_quantity, coalesce(actual_quantity, 0), actual_start, actual_end, status, priority, ${source}
      from input i where not exists (select 1 from production.work_orders w where w.number = i.number)
      on conflict (number) do nothing
      returning 1
    )
    select (select count(*)::int from ins) as created, (select count(*)::int from upd) as updated`.execute(db);
  return out[0]!;
}

// ---- materials
export async function upsertMaterials(db: Db, rows: MaterialRecord[], system: string): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const c = <K extends keyof MaterialRecord>(k: K) => rows.map((r) => r[k]);
  // The change time is carried along but is no reason to write on its own.
  const { rows: out } = await sql<{ inserted: boolean }>`
    insert into production.materials as m (id, description, type, base_unit, material_group, gross_weight, net_weight, weight_unit, is_marked_for_deletion, source_changed_at, source_system)
    select *, ${system} from unnest(${c('id')}::text[], ${c('description')}::text[], ${c('type')}::text[], ${c('baseUnit')}::text[], ${c('group')}::text[],
      ${c('grossWeight')}::numeric[], ${c('netWeight')}::numeric[], ${c('weightUnit')}::text[], ${c('isMarkedForDeletion')}::boolean[],
      ${rows.map((r) => r.changedAt?.toISOString() ?? null)}::timestamptz[])
    on conflict (id) do update set
      description = excluded.description, type = excluded.type, base_unit = excluded.base_unit, material_group = excluded.material_group,
      gross_weight = excluded.gross_weight, net_weight = excluded.net_weight, weight_unit = excluded.weight_unit,
      is_marked_for_deletion = excluded.is_marked_for_deletion, source_changed_at = excluded.source_changed_at, source_system = excluded.source_system, updated_at = now()
    where (m.description, m.type, m.base_unit, m.material_group, m.gross_weight, m.net_weight, m.weight_unit, m.is_marked_for_deletion, m.source_system)
      is distinct from (excluded.description, excluded.type, excluded.base_unit, excluded.material_group, excluded.gross_weight, excluded.net_weight, excluded.weight_unit, excluded.is_marked_for_deletion, excluded.source_system)
    returning (xmax = 0) as inserted`.execute(db);
  return { created: out.filter((x) => x.inserted).length, updated: out.filter((x) => !x.inserted).length };
}

export function listMaterials(db: Db, f: { search?: string | null; includeDeleted?: boolean | null }, page: PageArgs) {
  let q = idb(db).selectFrom('production.materials').selectAll();
  if (f.search)
    q = q.where((eb) => eb.or([eb('id', 'ilike', `%${f.search}%`), eb('description', 'ilike', `%${f.search}%`)]));
  if (!f.includeDeleted) q = q.where('isMarkedForDeletion', '=', false);
  return pageOf(q, page);
}

// ---- labour
export async function upsertLabour(db: Db, rows: LabourCostRecord[], system: string): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const c = <K extends keyof LabourCostRecord>(k: K) => rows.map((r) => r[k]);
  const { rows: out } = await sql<{ inserted: boolean }>`
    insert into production.labour_bookings as b (source_system, external_id, cost_center, work_center, line_id, work_order_number, work_date, hours, rate_per_hour, cost, currency)
    select ${system}, * from unnest(${c('externalId')}::text[], ${c('costCenter')}::text[], ${c('workCenter')}::text[], ${c('lineId')}::text[], ${c('workOrderNumber')}::text[],
      ${c('workDate')}::date[], ${c('hours')}::numeric[], ${c('ratePerHour')}::numeric[], ${c('cost')}::numeric[], ${c('currency')}::text[])
    on conflict (source_system, external_id) do update set
      cost_center = excluded.cost_center, work_center = excluded.work_center, line_id = excluded.line_id, work_order_number = excluded.work_order_number,
      work_date = excluded.work_date, hours = excluded.hours, rate_per_hour = excluded.rate_per_hour, cost = excluded.cost, currency = excluded.currency, updated_at = now()
    where (b.cost_center, b.work_center, b.line_id, b.work_order_number, b.work_date, b.hours, b.rate_per_hour, b.cost, b.currency)
      is distinct from (excluded.cost_center, excluded.work_center, excluded.line_id, excluded.work_order_number, excluded.work_date, excluded.hours, excluded.rate_per_hour, excluded.cost, excluded.currency)
    returning (xmax = 0) as inserted`.execute(db);
  return { created: out.filter((x) => x.inserted).length, updated: out.filter((x) => !x.inserted).length };
}

export interface LabourFilter {
  lineId?: string | null;
  costCenter?: string | null;
  from?: string | null;
  to?: string | null;
}
export function listLabour(db: Db, f: LabourFilter, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db).selectFrom('production.labourBookings').selectAll();
  if (f.lineId) q = q.where('lineId', '=', f.lineId);
  if (f.costCenter) q = q.where('costCenter', '=', f.costCenter);
  if (f.from) q = q.where('workDate', '>=', f.from);
  if (f.to) q = q.where('workDate', '<', f.to);
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'workDate', idCol: 'id' });
}

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
    insert into production.material_consumption as m (source_system, work_order_id, external_id, material_id, quantity, unit, lot, consumed_at)
    select ${system}, ${workOrderId}::uuid, * from unnest(${c('externalId')}::text[], ${c('materialId')}::text[], ${c('quantity')}::numeric[], ${c('unit')}::text[],
      ${c('lot')}::text[], ${rows.map((r) => r.consumedAt.toISOString())}::timestamptz[])
    on conflict (source_system, external_id) do update set
      work_order_id = excluded.work_order_id, material_id = excluded.material_id, quantity = excluded.quantity, unit = excluded.unit,
      lot = excluded.lot, consumed_at = excluded.consumed_at, updated_at = now()
    where (m.work_order_id, m.material_id, m.quantity, m.unit, m.lot, m.consumed_at)
      is distinct from (excluded.work_order_id, excluded.material_id, excluded.quantity, excluded.unit, excluded.lot, excluded.consumed_at)
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

// ---- recipes from the MES
export const latestRecipe = (db: Db, code: string) =>
  db
    .selectFrom('production.recipes')
    .selectAll()
    .where('code', '=', code)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();

export const insertRecipeDownload = (
  db: Db,
  r: {
    system: string;
    mesRecipeId: string;
    mesVersion: string;
    recipeId: string;
    createdVersion: boolean;
    downloadedBy: string;
  },
) => idb(db).insertInto('production.recipeDownloads').values(r).returningAll().executeTakeFirstOrThrow();

export function listRecipeDownloads(db: Db, f: { mesRecipeId?: string | null }, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db)
    .selectFrom('production.recipeDownloads as d')
    .innerJoin('production.recipes as r', 'r.id', 'd.recipeId')
    .selectAll('d');
  if (f.mesRecipeId) q = q.where('d.mesRecipeId', '=', f.mesRecipeId);
  if (scope.lineIds)
    q = q.where((eb) => eb.or([eb('r.lineId', 'is', null), eb('r.lineId', 'in', inList(scope.lineIds!))]));
  return pageOf(q, page, { sortCol: 'd.downloadedAt', idCol: 'd.id', desc: true });
}

// ---- production variance
export interface VarianceFilter {
  lineId?: string | null;
  from?: Date | null;
  to?: Date | null;
  status?: string[] | null;
}
export function listVariance(db: Db, f: VarianceFilter, scope: ScopeFilter, page: PageArgs) {
  let q = db
    .selectFrom('production.workOrders')
    .select([
      'id as workOrderId',
      'id',
      'number',
      'lineId',
      'status',
      'plannedQuantity',
      'actualQuantity',
      'plannedStart',
      'plannedEnd',
      'actualStart',
      'actualEnd',
    ]);
  if (f.lineId) q = q.where('lineId', '=', f.lineId);
  if (f.from) q = q.where('plannedEnd', '>', f.from);
  if (f.to) q = q.where('plannedStart', '<', f.to);
  if (f.status?.length) q = q.where('status', 'in', f.status as never);
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf<VarianceRow & { id: string }>(q as never, page, { sortCol: 'plannedStart', idCol: 'id' });
}

// ---- outbound order status reports
export interface NewOutbound {
  idempotencyKey: string;
  system: string;
  workOrderId: string;
  workOrderNumber: string;
  lineId: string;
  status: 'PLANNED' | 'ACTIVE' | 'COMPLETED' | 'CANCELLED';
  actualQuantity: number;
  actualStart: Date | null;
  actualEnd: Date | null;
  requestedBy: string;
}

/** The fields of a report a caller chose; a replay of its key must carry the same ones. */
export type StatusRequestMatch = (existing: OutboundUpdateRow) => boolean;

/**
 * The local change and its report to the MES commit together: the report can never be lost, nor sent for a
 * change that rolled back. The key is checked first, under a transaction-scoped lock on it, so a reused key
 * changes nothing: the same request again is a replay (the existing report, no write); anything else
 * (another order, other values) is a conflict, returned before the work order is touched.
 */
export async function recordStatusChange(
  db: Db,
  u: NewOutbound,
  sameRequest: StatusRequestMatch,
): Promise<{ kind: 'created' | 'replay'; row: OutboundUpdateRow } | { kind: 'conflict'; row: OutboundUpdateRow }> {
  return db.transaction().execute(async (tx) => {
    // Two concurrent first uses of one key wait for each other here; the second then sees the first's report.
    await sql`select pg_advisory_xact_lock(hashtextextended(${'outbound-key:' + u.idempotencyKey}, 0))`.execute(tx);
    const t = idb(tx as unknown as Db);
    const existing = await t
      .selectFrom('production.outboundUpdates')
      .selectAll()
      .where('idempotencyKey', '=', u.idempotencyKey)
      .executeTakeFirst();
    if (existing) return { kind: sameRequest(existing) ? ('replay' as const) : ('conflict' as const), row: existing };
    await tx
      .updateTable('production.workOrders')
      .set({
        status: u.status,
        actualQuantity: u.actualQuantity,
        actualStart: u.actualStart,
        actualEnd: u.actualEnd,
        updatedAt: new Date(),
      })
      .where('id', '=', u.workOrderId)
      .execute();
    const row = await t.insertInto('production.outboundUpdates').values(u).returningAll().executeTakeFirstOrThrow();
    return { kind: 'created' as const, row };
  });
}

export const outboundById = (db: Db, id: string) =>
  idb(db).selectFrom('production.outboundUpdates').selectAll().where('id', '=', id).executeTakeFirst();

/**
 * Claims the next due report for `leaseSeconds` in one statement (its own short transaction): attempts + 1, a
 * fresh claim token. Nothing stays locked while the MES is called; a claim whose sender died expires and the
 * report is due again. A report waits while an earlier PENDING report of the same work order exists, so the MES
 * sees one order's changes in the order they were made.
 */
export async function claimDueOutbound(db: Db, leaseSeconds: number): Promise<OutboundUpdateRow | undefined> {
  const { rows } = await sql<OutboundUpdateRow>`
    update production.outbound_updates o
    set claimed_until = now() + make_interval(secs => ${leaseSeconds}), claim_token = gen_random_uuid(),
        attempts = o.attempts + 1, last_attempt_at = now(),
        -- Until the outcome is recorded, the next attempt is when this claim lapses (a sender that died mid-call);
        -- so nextAttemptAt is never earlier than lastAttemptAt, even read while an attempt is in flight.
        next_attempt_at = now() + make_interval(secs => ${leaseSeconds})
    where o.id = (
      select c.id from production.outbound_updates c
      where c.state = 'PENDING' and c.next_attempt_at <= now() and (c.claimed_until is null or c.claimed_until < now())
        and not exists (
          select 1 from production.outbound_updates e
          where e.work_order_id = c.work_order_id and e.state = 'PENDING' and (e.created_at, e.id) < (c.created_at, c.id))
      order by c.next_attempt_at, c.created_at
      limit 1
      for update skip locked)
    returning o.*`.execute(db);
  return rows[0];
}

export type OutboundOutcome =
  | { state: 'SENT'; duplicate: boolean }
  | { state: 'PENDING'; error: string; retryInSeconds: number }
  | { state: 'REJECTED'; error: string };

/**
 * Records how a claimed attempt ended (a second short transaction). Acceptance always counts (the MES has the
 * report, whoever sent it); a failure counts only while the claim is still this sender's, so a sender whose lease
 * ran out cannot undo what a later attempt recorded. Undefined: the claim was no longer ours.
 */
export const finishOutbound = (db: Db, id: string, claimToken: string, o: OutboundOutcome) => {
  let q = idb(db)
    .updateTable('production.outboundUpdates')
    .set({
      claimedUntil: null,
      claimToken: null,
      ...(o.state === 'SENT'
        ? { state: 'SENT', duplicate: o.duplicate, sentAt: new Date(), lastError: null }
        : o.state === 'REJECTED'
          ? { state: 'REJECTED', lastError: o.error, rejectedAt: new Date() }
          : { lastError: o.error, nextAttemptAt: sql<Date>`now() + make_interval(secs => ${o.retryInSeconds})` }),
    })
    .where('id', '=', id)
    .where('state', '=', 'PENDING');
  if (o.state !== 'SENT') q = q.where('claimToken', '=', claimToken);
  return q.returningAll().executeTakeFirst();
};

/** A REJECTED report back to PENDING, due now (an engineer fixed the cause). Undefined when it is not REJECTED. */
export const requeueRejected = (db: Db, id: string) =>
  idb(db)
    .updateTable('production.outboundUpdates')
    .set({ state: 'PENDING', nextAttemptAt: new Date(), rejectedAt: null, claimedUntil: null, claimToken: null })
    .where('id', '=', id)
    .where('state', '=', 'REJECTED')
    .returningAll()
    .executeTakeFirst();

/** When the next PENDING report falls due (null: none), so an idle sender sleeps until then. */
export async function nextOutboundDue(db: Db): Promise<Date | null> {
  const r = await idb(db)
    .selectFrom('production.outboundUpdates')
    .select((eb) => eb.fn.min(sql<Date>`greatest(next_attempt_at, coalesce(claimed_until, next_attempt_at))`).as('due'))
    .where('state', '=', 'PENDING')
    .executeTakeFirst();
  return r?.due ? new Date(r.due) : null;
}

export function listOutbound(
  db: Db,
  f: { state?: OutboundState[] | null; workOrderId?: string | null },
  scope: ScopeFilter,
  page: PageArgs,
) {
  let q = idb(db).selectFrom('production.outboundUpdates').selectAll();
  if (f.state?.length) q = q.where('state', 'in', f.state);
  if (f.workOrderId) q = q.where('workOrderId', '=', f.workOrderId);
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'createdAt', idCol: 'id', desc: true });
}
