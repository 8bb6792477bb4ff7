import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import { idb, type SyncKind, type SyncStatus, type SystemKind } from './tables.ts';

/** The sync history: one row per sync run, opened when it starts and closed with its tally. */

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
