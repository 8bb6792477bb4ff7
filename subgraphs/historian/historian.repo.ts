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
  tagType?: string | null;
}
/** A mapping and its telemetry series are made together (as a sensor and its series): the pipeline finds it so. */
export const insertTagMapping = (db: Db, i: NewTagMapping) =>
  db.transaction().execute(async (trx) => {
    const m = await trx
      .insertInto('historian.tagMappings')
      .values({
        historianSystem: i.historianSystem,
        historian: i.historian,
        ref: i.ref,
        tagType: i.tagType ?? null,
        tag: i.tag,
        machineId: i.machineId,
        signalType: i.signalType,
        unit: i.unit,
        scaleFactor: i.scaleFactor ?? 1,
        valueOffset: i.offset ?? 0,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('telemetry.series')
      .values({ machineId: m.machineId, signal: m.signalType, unit: m.unit, tagMappingId: m.id })
      .execute();
    return m;
  });

/** The series mirrors the mapping's signal and unit, so a change reaches both in one transaction. */
export const updateTagMapping = (db: Db, id: string, { offset, ...i }: G.UpdateTagMappingInput) =>
  db.transaction().execute(async (trx) => {
    const m = await trx
      .updateTable('historian.tagMappings')
      .set({ ...changes({ ...i, valueOffset: offset }), updatedAt: new Date() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    const series = changes({ signal: i.signalType, unit: i.unit });
    if (m && Object.keys(series).length)
      await trx.updateTable('telemetry.series').set(series).where('tagMappingId', '=', id).execute();
    return m;
  });

/** The mappings of a historian that historian.yml names, by tag (to see which exist already). */
export const mappingsByTags = (db: Db, historian: string, tags: readonly string[]) =>
  tags.length
    ? db
        .selectFrom('historian.tagMappings')
        .selectAll()
        .where('historian', '=', historian)
        .where('tag', 'in', [...tags])
        .execute()
    : Promise.resolve([]);

/** Machines that exist, of those named. */
export const existingMachines = async (db: Db, ids: readonly string[]) =>
  ids.length
    ? new Set(
        (
          await db
            .selectFrom('production.machines')
            .select('id')
            .where('id', 'in', [...ids])
            .execute()
        ).map((m) => m.id),
      )
    : new Set<string>();

// ---- backfill jobs, newest first; a scoped token sees the jobs that fill a mapping of its machines
export function listBackfillJobs(
  db: Db,
  f: G.BackfillJobFilter | null | undefined,
  scope: ScopeFilter,
  page: PageArgs,
) {
  let q = db.selectFrom('historian.backfillJobs as j').selectAll('j');
  if (f?.tagMappingId) {
    const id = f.tagMappingId;
    q = isUuid(id)
      ? q.where((eb) =>
          eb.exists(
            eb
              .selectFrom('historian.backfillTasks as t')
              .select('t.jobId')
              .whereRef('t.jobId', '=', 'j.id')
              .where('t.tagMappingId', '=', id),
          ),
        )
      : q.where(sql<boolean>`false`);
  }
  if (f?.historian) q = q.where('j.historian', '=', f.historian);
  if (f?.status?.length) q = q.where('j.status', 'in', f.status);
  if (scope.machineIds) {
    const machineIds = inList(scope.machineIds);
    q = q.where((eb) =>
      eb.exists(
        eb
          .selectFrom('historian.backfillTasks as t')
          .innerJoin('historian.tagMappings as m', 'm.id', 't.tagMappingId')
          .select('t.jobId')
          .whereRef('t.jobId', '=', 'j.id')
          .where('m.machineId', 'in', machineIds),
      ),
    );
  }
  return pageOf(q, page, { sortCol: 'j.createdAt', idCol: 'j.id', desc: true });
}

/** A job's machines (through its tasks' mappings), for the scope check on a job named by id. */
export const jobMachines = async (db: Db, jobId: string) =>
  (
    await db
      .selectFrom('historian.backfillTasks as t')
      .innerJoin('historian.tagMappings as m', 'm.id', 't.tagMappingId')
      .select('m.machineId')
      .distinct()
      .where('t.jobId', '=', jobId)
      .execute()
  ).map((r) => r.machineId);
