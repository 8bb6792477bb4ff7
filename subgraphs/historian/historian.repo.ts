import { sql } from 'kysely';
import { inList, isUuid, uuids, type Db } from '../../lib/db/index.ts';
import { changes, pageOf } from '../../lib/db/page.ts';
import type { ScopeFilter } from '../../lib/auth/scope.ts';
import type { PageArgs } from '../../lib/pagination.ts';
import type * as G from './__generated__/types.ts';

/** Historian's SQL: tag mappings and backfill jobs. Jobs are scoped through their tag mapping's machine. */

// ---- tag mappings
export function listTagMappings(db: Db, f: G.TagMappingFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('historian.tagMappings').selectAll();
  if (f?.machineId) q = q.where('machineId', '=', f.machineId);
  if (f?.historianSystem) q = q.where('historianSystem', '=', f.historianSystem);
  if (f?.isActive != null) q = q.where('isActive', '=', f.isActive);
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return pageOf(q, page, { sortCol: 'machineId', idCol: 'id' });
}
export const tagMappingsByIds = async (db: Db, ids: readonly string[]) => {
  const valid = uuids(ids);
  return valid.length ? db.selectFrom('historian.tagMappings').selectAll().where('id', 'in', valid).execute() : [];
};
export const tagMappingsByMachines = (db: Db, machineIds: readonly string[], scope: ScopeFilter) => {
  let q = db.selectFrom('historian.tagMappings').selectAll().where('machineId', 'in', machineIds);
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return q.orderBy('historianSystem').orderBy('tag').execute();
};
/** A mapping as it is stored: its historian system always, its historian and the tag's handle when checked on one. */
export interface NewTagMapping extends Omit<G.CreateTagMappingInput, 'historian' | 'historianSystem'> {
  historianSystem: G.HistorianSystem;
  historian: string | null;
  ref: string | null;
}
export const insertTagMapping = (db: Db, i: NewTagMapping) =>
  db
    .insertInto('historian.tagMappings')
    .values({
      historianSystem: i.historianSystem,
      historian: i.historian,
      ref: i.ref,
      tag: i.tag,
      machineId: i.machineId,
      signalType: i.signalType,
      unit: i.unit,
      scaleFactor: i.scaleFactor ?? 1,
      valueOffset: i.offset ?? 0,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateTagMapping = (db: Db, id: string, { offset, ...i }: G.UpdateTagMappingInput) =>
  db
    .updateTable('historian.tagMappings')
    .set({ ...changes({ ...i, valueOffset: offset }), updatedAt: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

// ---- backfill jobs, newest first
export function listBackfillJobs(
  db: Db,
  f: G.BackfillJobFilter | null | undefined,
  scope: ScopeFilter,
  page: PageArgs,
) {
  let q = db.selectFrom('historian.backfillJobs as j').selectAll('j');
  if (f?.tagMappingId)
    q = isUuid(f.tagMappingId) ? q.where('j.tagMappingId', '=', f.tagMappingId) : q.where(sql<boolean>`false`);
  if (f?.status?.length) q = q.where('j.status', 'in', f.status);
  if (scope.machineIds) {
    const machineIds = inList(scope.machineIds);
    q = q.where('j.tagMappingId', 'in', (eb) =>
      eb.selectFrom('historian.tagMappings').select('id').where('machineId', 'in', machineIds),
    );
  }
  return pageOf(q, page, { sortCol: 'j.createdAt', idCol: 'j.id', desc: true });
}
