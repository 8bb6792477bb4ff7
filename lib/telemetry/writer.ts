import { sql } from 'kysely';
import type { Db } from '../db/index.ts';

/** One reading as the pipeline's last stage hands it to storage. */
export interface StoredReading {
  seriesId: number;
  ts: Date;
  value: number;
  quality: number;
  source: number;
  workOrderId?: string | null;
  shiftId?: string | null;
  recipeId?: string | null;
  operatorId?: string | null;
}

/**
 * Writes a batch in ONE statement: readings (a redelivered (series, ts) is a no-op), then the 1-minute and
 * 1-hour rollups and the latest value per series from only the rows that were really inserted, so a
 * redelivery never counts twice. Rollup rows are touched in key order to keep concurrent batches from deadlocking.
 * Returns how many readings were new.
 */
export async function writeReadings(db: Db, batch: readonly StoredReading[]): Promise<number> {
  if (batch.length === 0) return 0;
  const col = <T>(f: (r: StoredReading) => T) => batch.map(f);
  const { rows } = await sql<{ inserted: number }>`
    with input as (
      select * from unnest(
        ${col((r) => r.seriesId)}::int[], ${col((r) => r.ts.toISOString())}::timestamptz[], ${col((r) => r.value)}::float8[],
        ${col((r) => r.quality)}::int2[], ${col((r) => r.source)}::int2[], ${col((r) => r.workOrderId ?? null)}::uuid[],
        ${col((r) => r.shiftId ?? null)}::uuid[], ${col((r) => r.recipeId ?? null)}::uuid[], ${col((r) => r.operatorId ?? null)}::text[]
      ) as t(series_id, ts, value, quality, source, work_order_id, shift_id, recipe_id, operator_id)
    ),
    ins as (
      insert into telemetry.readings (series_id, ts, value, quality, source, work_order_id, shift_id, recipe_id, operator_id)
      select * from input
      on conflict do nothing
      returning series_id, ts, value, quality
    ),
    r1m as (
      insert into telemetry.rollup_1m as r (series_id, bucket, n, sum, min, max)
      select series_id, date_trunc('minute', ts), count(*), sum(value), min(value), max(value) from ins group by 1, 2 order by 1, 2
      on conflict (series_id, bucket) do update
        set n = r.n + excluded.n, sum = r.sum + excluded.sum, min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)
    ),
    r1h as (
      insert into telemetry.rollup_1h as r (series_id, bucket, n, sum, min, max)
      select series_id, date_trunc('hour', ts), count(*), sum(value), min(value), max(value) from ins group by 1, 2 order by 1, 2
      on conflict (series_id, bucket) do update
        set n = r.n + excluded.n, sum = r.sum + excluded.sum, min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)
    ),
    lat as (
      insert into telemetry.latest as l (series_id, ts, value, quality)
      select distinct on (series_id) series_id, ts, value, quality from ins order by series_id, ts desc
      on conflict (series_id) do update set ts = excluded.ts, value = excluded.value, quality = excluded.quality
        where excluded.ts > l.ts
    )
    select count(*)::int as inserted from ins
  `.execute(db);
  return rows[0]?.inserted ?? 0;
}
