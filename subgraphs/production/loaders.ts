import DataLoader from 'dataloader';
import type { Db } from '../../lib/db/index.ts';
import { byKey, groupBy } from '../../lib/db/page.ts';
import type { Scope } from '../../lib/auth/scope.ts';
import * as repo from './production.repo.ts';

/** Per-request batching: N machines asking for their line cost one query, not N. */
export function createLoaders(db: Db, scope: Scope) {
  const now = new Date();
  return {
    site: new DataLoader((ids: readonly string[]) => repo.sitesByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id))),
    area: new DataLoader((ids: readonly string[]) => repo.areasByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id))),
    line: new DataLoader((ids: readonly string[]) => repo.linesByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id))),
    machine: new DataLoader((ids: readonly string[]) =>
      repo.machinesByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    product: new DataLoader((ids: readonly string[]) =>
      repo.productsByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    recipe: new DataLoader((ids: readonly string[]) =>
      repo.recipesByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    workOrder: new DataLoader((ids: readonly string[]) =>
      repo.workOrdersByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    areasBySite: new DataLoader((ids: readonly string[]) =>
      repo.areasBySites(db, ids).then((r) => groupBy(ids, r, (x) => x.siteId)),
    ),
    linesBySite: new DataLoader(async (ids: readonly string[]) =>
      groupBy(ids, await repo.linesBy(db, 'siteId', ids, await scope.filter()), (x) => x.siteId),
    ),
    linesByArea: new DataLoader(async (ids: readonly string[]) =>
      groupBy(ids, await repo.linesBy(db, 'areaId', ids, await scope.filter()), (x) => x.areaId),
    ),
    machinesByLine: new DataLoader((ids: readonly string[]) =>
      repo.machinesByLines(db, ids).then((r) => groupBy(ids, r, (x) => x.lineId)),
    ),
    currentWorkOrder: new DataLoader((ids: readonly string[]) =>
      repo.currentWorkOrders(db, ids, now).then((r) => byKey(ids, r, (x) => x.lineId)),
    ),
    currentShifts: new DataLoader((ids: readonly string[]) =>
      repo.currentShifts(db, ids, now).then((r) => groupBy(ids, r, (x) => x.lineId)),
    ),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
