import { sql } from 'kysely';
import { inList, uuids, type Db } from '../../lib/db/index.ts';
import { changes, pageOf } from '../../lib/db/page.ts';
import type { ScopeFilter } from '../../lib/auth/scope.ts';
import type { PageArgs } from '../../lib/pagination.ts';
import type * as G from './__generated__/types.ts';

/** Production's SQL: the hierarchy, products, recipes, work orders and shifts. Scope filters apply to every list. */

const now = () => new Date();

// ---- sites and areas
export function listSites(db: Db, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.sites').selectAll();
  if (scope.siteIds) q = q.where('id', 'in', inList(scope.siteIds));
  return pageOf(q, page);
}
export const sitesByIds = (db: Db, ids: readonly string[]) =>
  db.selectFrom('production.sites').selectAll().where('id', 'in', ids).execute();
export const insertSite = (db: Db, i: G.CreateSiteInput) =>
  db
    .insertInto('production.sites')
    .values({ id: i.id, name: i.name, timezone: i.timezone ?? 'UTC' })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateSite = (db: Db, id: string, i: G.UpdateSiteInput) =>
  db
    .updateTable('production.sites')
    .set({ ...changes(i), updatedAt: now() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

export function listAreas(db: Db, f: G.AreaFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.areas').selectAll();
  if (f?.siteId) q = q.where('siteId', '=', f.siteId);
  if (scope.siteIds) q = q.where('siteId', 'in', inList(scope.siteIds));
  return pageOf(q, page);
}
export const areasBySites = (db: Db, siteIds: readonly string[]) =>
  db.selectFrom('production.areas').selectAll().where('siteId', 'in', siteIds).orderBy('id').execute();
export const areasByIds = (db: Db, ids: readonly string[]) =>
  db.selectFrom('production.areas').selectAll().where('id', 'in', ids).execute();
export const insertArea = (db: Db, i: G.CreateAreaInput) =>
  db.insertInto('production.areas').values(i).returningAll().executeTakeFirstOrThrow();

// ---- lines and machines
export function listLines(db: Db, f: G.LineFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.lines').selectAll();
  if (f?.siteId) q = q.where('siteId', '=', f.siteId);
  if (f?.areaId) q = q.where('areaId', '=', f.areaId);
  if (f?.isActive != null) q = q.where('isActive', '=', f.isActive);
  if (scope.lineIds) q = q.where('id', 'in', inList(scope.lineIds));
  return pageOf(q, page);
}
export const linesByIds = (db: Db, ids: readonly string[]) =>
  db.selectFrom('production.lines').selectAll().where('id', 'in', ids).execute();
export const linesBy = (db: Db, col: 'siteId' | 'areaId', ids: readonly string[], scope: ScopeFilter) => {
  let q = db.selectFrom('production.lines').selectAll().where(col, 'in', ids);
  if (scope.lineIds) q = q.where('id', 'in', inList(scope.lineIds));
  return q.orderBy('id').execute();
};
export const insertLine = (db: Db, i: G.CreateLineInput) =>
  db
    .insertInto('production.lines')
    .values({ id: i.id, siteId: i.siteId, areaId: i.areaId ?? null, name: i.name })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateLine = (db: Db, id: string, i: G.UpdateLineInput) =>
  db
    .updateTable('production.lines')
    .set({ ...changes(i), updatedAt: now() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

export function listMachines(db: Db, f: G.MachineFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.machines as m').selectAll('m');
  if (f?.lineId) q = q.where('m.lineId', '=', f.lineId);
  if (f?.siteId)
    q = q.where('m.lineId', 'in', (eb) =>
      eb.selectFrom('production.lines').select('id').where('siteId', '=', f.siteId!),
    );
  if (f?.type) q = q.where('m.type', '=', f.type);
  if (f?.isActive != null) q = q.where('m.isActive', '=', f.isActive);
  if (scope.lineIds) q = q.where('m.lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'm.id', idCol: 'm.id' });
}
export const machinesByIds = (db: Db, ids: readonly string[]) =>
  db.selectFrom('production.machines').selectAll().where('id', 'in', ids).execute();
export const machinesByLines = (db: Db, lineIds: readonly string[]) =>
  db.selectFrom('production.machines').selectAll().where('lineId', 'in', lineIds).orderBy('id').execute();
export const insertMachine = (db: Db, i: G.CreateMachineInput) =>
  db
    .insertInto('production.machines')
    .values({
      id: i.id,
      lineId: i.lineId,
      name: i.name,
      type: i.type ?? null,
      idealCycleTimeSeconds: i.idealCycleTimeSeconds ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateMachine = (db: Db, id: string, i: G.UpdateMachineInput) =>
  db
    .updateTable('production.machines')
    .set({ ...changes(i), updatedAt: now() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

// ---- products and recipes (products are a plant-wide catalogue: not scoped)
export function listProducts(db: Db, f: G.ProductFilter | null | undefined, page: PageArgs) {
  let q = db.selectFrom('production.products').selectAll();
  if (f?.family) q = q.where('family', '=', f.family);
  return pageOf(q, page);
}
export const productsByIds = (db: Db, ids: readonly string[]) =>
  db.selectFrom('production.products').selectAll().where('id', 'in', ids).execute();
export const insertProduct = (db: Db, i: G.CreateProductInput) =>
  db
    .insertInto('production.products')
    .values({
      id: i.id,
      name: i.name,
      family: i.family ?? null,
      sku: i.sku ?? null,
      standardCycleTimeSeconds: i.standardCycleTimeSeconds ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateProduct = (db: Db, id: string, i: G.UpdateProductInput) =>
  db
    .updateTable('production.products')
    .set({ ...changes(i), updatedAt: now() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

export function listRecipes(db: Db, f: G.RecipeFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.recipes').selectAll();
  if (f?.code) q = q.where('code', '=', f.code);
  if (f?.productId) q = q.where('productId', '=', f.productId);
  if (f?.lineId) q = q.where('lineId', '=', f.lineId);
  if (f?.isActive != null) q = q.where('isActive', '=', f.isActive);
  if (scope.lineIds) q = q.where((eb) => eb.or([eb('lineId', 'is', null), eb('lineId', 'in', inList(scope.lineIds!))]));
  // (code, version) is unique: recipes list by code, each code's versions in order.
  return pageOf(q, page, { sortCol: 'code', idCol: 'version' });
}
export const recipesByIds = (db: Db, ids: readonly string[]) =>
  uuids(ids).length
    ? db.selectFrom('production.recipes').selectAll().where('id', 'in', uuids(ids)).execute()
    : Promise.resolve([]);
/** The next version of a recipe code is taken inside the insert, so two concurrent creates cannot share one. */
export const insertRecipe = (db: Db, i: G.CreateRecipeInput) =>
  db
    .insertInto('production.recipes')
    .values({
      code: i.code,
      version: sql<number>`(select coalesce(max(version), 0) + 1 from production.recipes where code = ${i.code})`,
      productId: i.productId,
      lineId: i.lineId ?? null,
      targetCycleTimeSeconds: i.targetCycleTimeSeconds,
      setupTimeSeconds: i.setupTimeSeconds ?? 0,
      teardownTimeSeconds: i.teardownTimeSeconds ?? 0,
      parameters: JSON.stringify(i.parameters ?? {}),
    })
    .returningAll()
    .executeTakeFirstOrThrow();

// ---- work orders and shifts
export function listWorkOrders(db: Db, f: G.WorkOrderFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.workOrders').selectAll();
  if (f?.lineId) q = q.where('lineId', '=', f.lineId);
  if (f?.status?.length) q = q.where('status', 'in', f.status);
  if (f?.from) q = q.where('plannedEnd', '>', new Date(f.from));
  if (f?.to) q = q.where('plannedStart', '<', new Date(f.to));
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'plannedStart', idCol: 'id' });
}
export const workOrdersByIds = (db: Db, ids: readonly string[]) =>
  uuids(ids).length
    ? db.selectFrom('production.workOrders').selectAll().where('id', 'in', uuids(ids)).execute()
    : Promise.resolve([]);
/** Per line, the ACTIVE order, else the PLANNED one whose window holds `at` (highest priority first). */
export const currentWorkOrders = (db: Db, lineIds: readonly string[], at: Date) =>
  db
    .selectFrom('production.workOrders')
    .selectAll()
    .distinctOn('lineId')
    .where('lineId', 'in', lineIds)
    .where((eb) =>
      eb.or([
        eb('status', '=', 'ACTIVE'),
        eb.and([eb('status', '=', 'PLANNED'), eb('plannedStart', '<=', at), eb('plannedEnd', '>', at)]),
      ]),
    )
    .orderBy('lineId')
    .orderBy(sql`status = 'ACTIVE'`, 'desc')
    .orderBy('priority', 'asc')
    .orderBy('plannedStart', 'desc')
    .execute();
export const insertWorkOrder = (db: Db, i: G.CreateWorkOrderInput) =>
  db
    .insertInto('production.workOrders')
    .values({
      number: i.number,
      lineId: i.lineId,
      recipeId: i.recipeId ?? null,
      productId: i.productId ?? null,
      plannedStart: new Date(i.plannedStart),
      plannedEnd: new Date(i.plannedEnd),
      plannedQuantity: i.plannedQuantity,
      priority: i.priority ?? 5,
      status: i.status ?? 'PLANNED',
    })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateWorkOrder = (db: Db, id: string, i: G.UpdateWorkOrderInput) =>
  db
    .updateTable('production.workOrders')
    .set({ ...changes(i), updatedAt: now() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

export function listShifts(db: Db, f: G.ShiftFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('production.shifts').selectAll();
  if (f?.lineId) q = q.where('lineId', '=', f.lineId);
  if (f?.operatorId) q = q.where('operatorId', '=', f.operatorId);
  if (f?.from) q = q.where('endsAt', '>', new Date(f.from));
  if (f?.to) q = q.where('startsAt', '<', new Date(f.to));
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'startsAt', idCol: 'id' });
}
export const shiftsByIds = (db: Db, ids: readonly string[]) =>
  uuids(ids).length
    ? db.selectFrom('production.shifts').selectAll().where('id', 'in', uuids(ids)).execute()
    : Promise.resolve([]);
export const currentShifts = (db: Db, lineIds: readonly string[], at: Date) =>
  db
    .selectFrom('production.shifts')
    .selectAll()
    .where('lineId', 'in', lineIds)
    .where('startsAt', '<=', at)
    .where('endsAt', '>', at)
    .orderBy('operatorId')
    .execute();
export const insertShift = (db: Db, i: G.CreateShiftInput) =>
  db
    .insertInto('production.shifts')
    .values({
      lineId: i.lineId,
      shiftDate: i.shiftDate,
      shiftNumber: i.shiftNumber,
      operatorId: i.operatorId,
      operatorName: i.operatorName ?? null,
      role: i.role ?? 'OPERATOR',
      startsAt: new Date(i.startsAt),
      endsAt: new Date(i.endsAt),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateShift = (db: Db, id: string, i: G.UpdateShiftInput) =>
  db
    .updateTable('production.shifts')
    .set({ ...changes(i), updatedAt: now() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
