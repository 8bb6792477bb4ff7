import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import type { SourceStatus } from './source.ts';

/** One upsert per source of this worker, so the iot subgraph (another process) can serve telemetrySources. */
export async function saveSourceStatus(db: Db, worker: string, statuses: SourceStatus[]): Promise<void> {
  if (!statuses.length) return;
  await db
    .insertInto('iot.telemetrySources')
    .values(
      statuses.map((s) => ({
        worker,
        name: s.name,
        kind: s.kind,
        state: s.state,
        ready: s.ready,
        problem: s.problem ?? null,
        counters: JSON.stringify(s.counters),
      })),
    )
    .onConflict((oc) =>
      oc.columns(['worker', 'name']).doUpdateSet({
        kind: (eb) => eb.ref('excluded.kind'),
        state: (eb) => eb.ref('excluded.state'),
        ready: (eb) => eb.ref('excluded.ready'),
        problem: (eb) => eb.ref('excluded.problem'),
        counters: (eb) => eb.ref('excluded.counters'),
        updatedAt: sql`now()`,
      }),
    )
    .execute();
}
