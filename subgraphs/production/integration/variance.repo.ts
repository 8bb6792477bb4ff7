import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import type { VarianceRow } from './tables.ts';

/** Production variance: planned against actual quantity and time, per work order. */

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
