import DataLoader from 'dataloader';
import type { Db } from '../../lib/db/index.ts';
import { byKey, groupBy } from '../../lib/db/page.ts';
import type { Scope } from '../../lib/auth/scope.ts';
import * as repo from './iot.repo.ts';

/** Per-request batching: a list of N machines asking for sensors or latest readings costs one query each, not N. */
export function createLoaders(db: Db, scope: Scope) {
  return {
    sensor: new DataLoader((ids: readonly string[]) =>
      repo.sensorsByIds(db, ids).then((r) => byKey(ids, r, (x) => x.id)),
    ),
    sensorsByMachine: new DataLoader(async (ids: readonly string[]) =>
      groupBy(ids, await repo.sensorsByMachines(db, ids, await scope.filter()), (x) => x.machineId),
    ),
    latestByMachine: new DataLoader((ids: readonly string[]) =>
      repo.latestReadings(db, 'machineId', ids).then((r) => groupBy(ids, r, (x) => x.machineId)),
    ),
    latestBySensor: new DataLoader((ids: readonly string[]) =>
      repo.latestReadings(db, 'sensorId', ids).then((r) => byKey(ids, r, (x) => x.sensorId)),
    ),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
