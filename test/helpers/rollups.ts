import { sql } from 'kysely';
import type { Db } from '../../lib/db/index.ts';

/**
 * What a redelivery could really double: readings are unique on (series, ts), so a stored row cannot repeat, but a
 * batch written twice could count its rows twice in the rollups or set an older latest value. This recomputes
 * both from the raw rows of `sensorIds` and lists every disagreement. `from` and `to` must be whole hours, so the
 * hour buckets hold only rows of the range.
 * Sums are compared to six decimals: a sum added up batch by batch may differ from one pass in the last bits.
 * `buckets` says how many were compared (a check of nothing is no check).
 */
export async function rollupMismatches(
  db: Db,
  sensorIds: readonly string[],
  from: Date,
  to: Date,
): Promise<{ buckets: number; mismatches: string[] }> {
  const mismatches: string[] = [];
  let buckets = 0;
  for (const [table, width] of [
    ['rollup_1m', '1 minute'],
    ['rollup_1h', '1 hour'],
  ] as const) {
    const { rows } = await sql<{ series: number; bucket: Date; raw: string | null; rolled: string | null }>`
      with raw as (
        select r.series_id, date_bin(${width}::interval, r.ts, timestamptz 'epoch') as bucket,
          count(*)::int as n, sum(r.value) as sum, min(r.value) as min, max(r.value) as max
        from telemetry.readings r join telemetry.series s on s.id = r.series_id
        where s.sensor_id = any(${sensorIds}) and r.ts >= ${from} and r.ts < ${to}
        group by 1, 2
      ), rolled as (
        select u.* from ${sql.table(`telemetry.${table}`)} u join telemetry.series s on s.id = u.series_id
        where s.sensor_id = any(${sensorIds}) and u.bucket >= ${from} and u.bucket < ${to}
      )
      select coalesce(raw.series_id, rolled.series_id) as series, coalesce(raw.bucket, rolled.bucket) as bucket,
        case when raw.n is null then null
          else concat_ws(' ', raw.n, round(raw.sum::numeric, 6), raw.min, raw.max) end as raw,
        case when rolled.n is null then null
          else concat_ws(' ', rolled.n, round(rolled.sum::numeric, 6), rolled.min, rolled.max) end as rolled
      from raw full join rolled on rolled.series_id = raw.series_id and rolled.bucket = raw.bucket`.execute(db);
    buckets += rows.length;
    for (const r of rows) {
      if (r.raw !== r.rolled) {
        const at = r.bucket.toISOString();
        mismatches.push(`${table} series ${r.series} ${at}: raw (n sum min max) ${r.raw}, rollup ${r.rolled}`);
      }
    }
  }
  const latest = await sql<{ series: number; raw: string | null; kept: string | null }>`
    select s.id as series,
      (select concat_ws(' ', r.ts, r.value) from telemetry.readings r where r.series_id = s.id
        order by r.ts desc limit 1) as raw,
      (select concat_ws(' ', l.ts, l.value) from telemetry.latest l where l.series_id = s.id) as kept
    from telemetry.series s where s.sensor_id = any(${sensorIds})`.execute(db);
  for (const r of latest.rows) {
    if (r.raw !== r.kept) mismatches.push(`latest of series ${r.series}: newest raw row ${r.raw}, kept ${r.kept}`);
  }
  return { buckets, mismatches };
}
