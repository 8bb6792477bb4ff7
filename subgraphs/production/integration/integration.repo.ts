import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import type { ConsumptionRecord, ScheduleRecord } from '../../../lib/connectors/mes/types.ts';
import type { LabourCostRecord, MaterialRecord } from '../../../lib/connectors/erp/types.ts';
import { idb, type OutboundUpdateRow, type OutboundState, type SyncKind, type SyncStatus, type SystemKind, type VarianceRow } from './tables.ts';

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
export async function withTryLock<T>(db: Db, key: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_lock(hashtextextended(${key}, 0)) as ok`.execute(conn);
    if (!rows[0]?.ok) return { ran: false as const };
    try {
      return { ran: true as const, value: await fn() };
    } finally {
      await sql`select pg_advisory_unlock(hashtextextended(${key}, 0))`.execute(conn);
    }
  });
}

// ---- sync history
export const insertSyncRun = (db: Db, r: { system: string; systemKind: SystemKind; kind: SyncKind; lineId: string | null; workOrderId?: string | null; rangeFrom?: Date | null; rangeTo?: Date | null; trigger: 'MANUAL' | 'SCHEDULED'; requestedBy: string }) =>
  idb(db)
    .insertInto('production.syncRuns')
    .values({ ...r, workOrderId: r.workOrderId ?? null, rangeFrom: r.rangeFrom ?? null, rangeTo: r.rangeTo ?? null })
    .returning(['id', 'startedAt'])
    .executeTakeFirstOrThrow();

export const finishSyncRun = (db: Db, id: string, r: { status: SyncStatus; fetched: number; created: number; updated: number; unchanged: number; rejected: number; errors: { key: string | null; message: string }[]; errorCount: number; durationMs: number }) =>
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
  const r = await sql`insert into production.products (id, name) select p, p from unnest(${[...new Set(ids)]}::text[]) as p on conflict (id) do nothing`.execute(db);
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
  const iso = (k: 'plannedStart' | 'plannedEnd' | 'actualStart' | 'actualEnd') => rows.map((r) => r[k]?.toISOString() ?? null);
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

export const workOrderByNumber = (db: Db, number: string) =>
  db.selectFrom('production.workOrders').selectAll().where('number', '=', number).executeTakeFirst();

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
  if (f.search) q = q.where((eb) => eb.or([eb('id', 'ilike', `%${f.search}%`), eb('description', 'ilike', `%${f.search}%`)]));
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
export async function upsertConsumption(db: Db, workOrderId: string, rows: ConsumptionRecord[], system: string): Promise<Counts> {
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

export function listConsumption(db: Db, f: { workOrderId?: string | null; materialId?: string | null }, scope: ScopeFilter, page: PageArgs) {
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
  db.selectFrom('production.recipes').selectAll().where('code', '=', code).orderBy('version', 'desc').limit(1).executeTakeFirst();

/** A new version of a recipe code (the next number taken inside the insert, as createRecipe does). */
export const insertRecipeVersion = (db: Db, r: { code: string; productId: string; lineId: string | null; targetCycleTimeSeconds: number; setupTimeSeconds: number; teardownTimeSeconds: number; parameters: Record<string, unknown> }) =>
  db
    .insertInto('production.recipes')
    .values({ ...r, version: sql<number>`(select coalesce(max(version), 0) + 1 from production.recipes where code = ${r.code})`, parameters: JSON.stringify(r.parameters) })
    .returningAll()
    .executeTakeFirstOrThrow();

export const insertRecipeDownload = (db: Db, r: { system: string; mesRecipeId: string; mesVersion: string; recipeId: string; createdVersion: boolean; downloadedBy: string }) =>
  idb(db).insertInto('production.recipeDownloads').values(r).returningAll().executeTakeFirstOrThrow();

export function listRecipeDownloads(db: Db, f: { mesRecipeId?: string | null }, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db).selectFrom('production.recipeDownloads as d').innerJoin('production.recipes as r', 'r.id', 'd.recipeId').selectAll('d');
  if (f.mesRecipeId) q = q.where('d.mesRecipeId', '=', f.mesRecipeId);
  if (scope.lineIds) q = q.where((eb) => eb.or([eb('r.lineId', 'is', null), eb('r.lineId', 'in', inList(scope.lineIds!))]));
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
    .select(['id as workOrderId', 'id', 'number', 'lineId', 'status', 'plannedQuantity', 'actualQuantity', 'plannedStart', 'plannedEnd', 'actualStart', 'actualEnd']);
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

/** The local change and its report to the MES commit together: the report can never be lost, nor sent for a change that rolled back. */
export async function recordStatusChange(db: Db, u: NewOutbound) {
  return db.transaction().execute(async (tx) => {
    await tx
      .updateTable('production.workOrders')
      .set({ status: u.status, actualQuantity: u.actualQuantity, actualStart: u.actualStart, actualEnd: u.actualEnd, updatedAt: new Date() })
      .where('id', '=', u.workOrderId)
      .execute();
    return idb(tx as unknown as Db)
      .insertInto('production.outboundUpdates')
      .values(u)
      .onConflict((oc) => oc.column('idempotencyKey').doNothing())
      .returningAll()
      .executeTakeFirst();
  });
}

export const outboundByKey = (db: Db, key: string) =>
  idb(db).selectFrom('production.outboundUpdates').selectAll().where('idempotencyKey', '=', key).executeTakeFirst();

/**
 * Sends one report while holding its row lock: two workers (or a retry racing a sweep) cannot send the same
 * report at once, and a report already SENT is skipped. `send` runs inside the transaction and says how the
 * row ends; the new state commits with the lock's release.
 */
export async function withClaimedOutbound(
  db: Db,
  id: string,
  send: (row: OutboundUpdateRow) => Promise<{ state: OutboundState; error?: string | null; duplicate?: boolean }>,
): Promise<OutboundUpdateRow | undefined> {
  return db.transaction().execute(async (tx) => {
    const t = idb(tx as unknown as Db);
    const row = await t.selectFrom('production.outboundUpdates').selectAll().where('id', '=', id).where('state', '<>', 'SENT').forUpdate().skipLocked().executeTakeFirst();
    if (!row) return undefined;
    const s = await send(row);
    return markOutbound(tx as unknown as Db, id, { ...s, attempted: true });
  });
}

export const markOutbound = (db: Db, id: string, s: { state: OutboundState; error?: string | null; duplicate?: boolean; attempted: boolean }) =>
  idb(db)
    .updateTable('production.outboundUpdates')
    .set((eb) => ({
      state: s.state,
      lastError: s.error ?? null,
      ...(s.duplicate !== undefined ? { duplicate: s.duplicate } : {}),
      ...(s.attempted ? { attempts: eb('attempts', '+', 1), lastAttemptAt: new Date() } : {}),
      ...(s.state === 'SENT' ? { sentAt: new Date() } : {}),
    }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

export const unsentOutboundIds = (db: Db) =>
  idb(db).selectFrom('production.outboundUpdates').select('id').where('state', '=', 'PENDING').orderBy('createdAt').limit(1000).execute();

export function listOutbound(db: Db, f: { state?: OutboundState[] | null; workOrderId?: string | null }, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db).selectFrom('production.outboundUpdates').selectAll();
  if (f.state?.length) q = q.where('state', 'in', f.state);
  if (f.workOrderId) q = q.where('workOrderId', '=', f.workOrderId);
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'createdAt', idCol: 'id', desc: true });
}
