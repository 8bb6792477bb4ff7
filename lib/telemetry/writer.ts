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
 * Writes a batch in ONE statement: readings, then the 1-minute and 1-hour rollups and the latest value per
 * series from only the rows that were really inserted, so a redelivery never counts twice. Rollup rows are
 * touched in key order to keep concurrent batches from deadlocking. Returns how many readings were new.
 *
 * `idempotent` (the default) makes a redelivered (series, ts) a no-op with ON CONFLICT DO NOTHING. A plain
 * INSERT is ~35% cheaper for Postgres (no speculative insertion), and redeliveries are rare, so the pipeline
 * first tries `idempotent: false` and, on a unique violation (which aborts the statement and its transaction),
 * runs the batch again with `idempotent: true`: see commitBatch in pipeline.repo.ts.
 */
export async function writeReadings(db: Db, batch: readonly StoredReading[], idempotent = true): Promise<number> {
  if (batch.length === 0) return 0;
  const n = batch.length;
  const series = new Array<number>(n), ms = new Array<number>(n), value = new Array<number>(n), quality = new Array<number>(n), source = new Array<number>(n);
  const wo = new Array<string>(n), shift = new Array<string>(n), recipe = new Array<string>(n), op = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const r = batch[i]!;
    series[i] = r.seriesId;
    ms[i] = r.ts.getTime();
    value[i] = r.value;
    quality[i] = r.quality;
    source[i] = r.source;
    wo[i] = r.workOrderId ?? 'NULL';
    shift[i] = r.shiftId ?? 'NULL';
    recipe[i] = r.recipeId ?? 'NULL';
    op[i] = r.operatorId == null ? 'NULL' : quoteElement(r.operatorId);
  }
  // Array literals built here: node-postgres would otherwise escape every element of 9 arrays one by one, which
  // cost more CPU than the rest of the pipeline. Numbers and uuids need no quoting; timestamps travel as epoch ms.
  const lit = (xs: (string | number)[]) => `{${xs.join(',')}}`;
  const { rows } = await sql<{ inserted: number }>`
    with input as (
      select series_id, timestamptz 'epoch' + ms * interval '1 millisecond' as ts, value, quality, source, work_order_id, shift_id, recipe_id, operator_id
      from unnest(
        ${lit(series)}::int[], ${lit(ms)}::int8[], ${lit(value)}::float8[], ${lit(quality)}::int2[], ${lit(source)}::int2[],
        ${lit(wo)}::uuid[], ${lit(shift)}::uuid[], ${lit(recipe)}::uuid[], ${lit(op)}::text[]
      ) as t(series_id, ms, value, quality, source, work_order_id, shift_id, recipe_id, operator_id)
    ),
    ins as (
      insert into telemetry.readings (series_id, ts, value, quality, source, work_order_id, shift_id, recipe_id, operator_id)
      select * from input
      ${idempotent ? sql`on conflict do nothing` : sql``}
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

/** A text element of a Postgres array literal: always quoted, so NULL, commas and braces stay text. */
function quoteElement(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Postgres unique_violation: a plain insert met a reading that is already stored (a redelivery). */
export const isUniqueViolation = (e: unknown): boolean => (e as { code?: string } | null)?.code === '23505';
