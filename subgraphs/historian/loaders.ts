import DataLoader from 'dataloader';
import type { Db } from '../../lib/db/index.ts';
import { byKey, groupBy } from '../../lib/db/page.ts';
import type { Scope } from '../../lib/auth/scope.ts';
import { jobsProgress, watermarks } from './backfill/backfill.repo.ts';
import * as repo from './historian.repo.ts';

/** Per-request batching: N machines asking for their tag mappings, or N jobs for their progress, cost one query. */
export function createLoaders(db: Db, scope: Scope) {
  return {
    tagMapping: new DataLoader((ids: readonly string[]) =>
      repo.tagMappingsByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    tagMappingsByMachine: new DataLoader(async (ids: readonly string[]) =>
      groupBy(ids, await repo.tagMappingsByMachines(db, ids, await scope.filter()), (x) => x.machineId),
    ),
    jobProgress: new DataLoader(async (ids: readonly string[]) => {
      const found = await jobsProgress(db, ids);
      return ids.map((id) => found.get(id) ?? null);
    }),
    watermarks: new DataLoader(async (ids: readonly string[]) => {
      const found = new Map((await watermarks(db, ids)).map((w) => [w.tagMappingId, w]));
      return ids.map((id) => found.get(id) ?? { tagMappingId: id, ranges: [] });
    }),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
