import DataLoader from 'dataloader';
import type { Db } from '../../lib/db/index.ts';
import { groupBy } from '../../lib/db/page.ts';
import type { Scope } from '../../lib/auth/scope.ts';
import * as repo from './quality.repo.ts';

/** Per-request batching: N machines asking for open alerts or rules cost one query each, not N. */
export function createLoaders(db: Db, scope: Scope) {
  return {
    openAlertsByMachine: new DataLoader((ids: readonly string[]) =>
      repo.openAlertsByMachines(db, ids).then((r) => groupBy(ids, r, (x) => x.machineId)),
    ),
    rangeRulesByMachine: new DataLoader(async (ids: readonly string[]) =>
      groupBy(ids, await repo.rangeRulesByMachines(db, ids, await scope.filter()), (x) => x.machineId),
    ),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
