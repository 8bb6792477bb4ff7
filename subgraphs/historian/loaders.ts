import DataLoader from 'dataloader';
import type { Db } from '../../lib/db/index.ts';
import { byKey, groupBy } from '../../lib/db/page.ts';
import type { Scope } from '../../lib/auth/scope.ts';
import * as repo from './historian.repo.ts';

/** Per-request batching: N machines asking for their tag mappings, or N jobs for theirs, cost one query. */
export function createLoaders(db: Db, scope: Scope) {
  return {
    tagMapping: new DataLoader((ids: readonly string[]) =>
      repo.tagMappingsByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    tagMappingsByMachine: new DataLoader(async (ids: readonly string[]) =>
      groupBy(ids, await repo.tagMappingsByMachines(db, ids, await scope.filter()), (x) => x.machineId),
    ),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
