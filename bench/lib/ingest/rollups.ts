/**
 * What a redelivery could really double. telemetry.readings has a primary key on (series_id, ts), so its rows
 * cannot repeat (counting duplicate rows there checks nothing); but a batch written twice would add its rows to
 * the rollups twice, and one written out of order could leave an older latest value. After the hub's measures
 * this recomputes, from the raw rows of the run's series, every 1-minute and 1-hour bucket (n, sum, min, max;
 * UTC, date_bin from the epoch, as lib/db/migrations/0001_foundation.ts and the write paths bucket them) and the
 * newest row per series, and counts each stored bucket or latest value that differs, is missing or is extra.
 */
import { f1, int, say, type Ctx } from './common.ts';

export interface RollupCheck {
  /** Buckets compared (raw and stored, full outer join): 0 would mean the check saw nothing. */
  buckets1m: number;
  buckets1h: number;
  series: number;
  /** Buckets and latest values that do not match the raw rows. */
  rollupMismatches: number;
  /** The first few, for the log. */
  examples: string[];
  seconds: number;
}

/**
 * Sums are compared relative to their size: the hub adds a bucket up batch by batch, this in one pass, so the
 * last bits may differ; a reading counted twice changes n (and the sum by a whole value).
 */
const SUM_TOLERANCE = 1e-9;

export async function checkRollups(ctx: Ctx): Promise<RollupCheck> {
  const started = performance.now();
  const ids = ctx.plant.seriesIds;
  // One pass over the raw rows: minute buckets, and hour buckets from them (minutes nest in hours from one origin).
  const { rows } = await ctx.pgc.query<{ kind: string; buckets: number; bad: number; examples: string[] | null }>(
    `with m as (
       select series_id, date_bin('1 minute', ts, timestamptz 'epoch') as bucket, count(*)::int as n,
         sum(value) as sum, min(value) as min, max(value) as max
       from telemetry.readings where series_id = any($1) group by 1, 2
     ), h as (
       select series_id, date_bin('1 hour', bucket, timestamptz 'epoch') as bucket, sum(n)::int as n,
         sum(sum) as sum, min(min) as min, max(max) as max
       from m group by 1, 2
     ), cmp as (
       select '1m' as kind, coalesce(raw.series_id, st.series_id) as series_id,
         coalesce(raw.bucket, st.bucket) as bucket,
         raw.n as raw_n, raw.sum as raw_sum, raw.min as raw_min, raw.max as raw_max,
         st.n as st_n, st.sum as st_sum, st.min as st_min, st.max as st_max
       from m raw full join (select * from telemetry.rollup_1m where series_id = any($1)) st
         on st.series_id = raw.series_id and st.bucket = raw.bucket
       union all
       select '1h', coalesce(raw.series_id, st.series_id), coalesce(raw.bucket, st.bucket),
         raw.n, raw.sum, raw.min, raw.max, st.n, st.sum, st.min, st.max
       from h raw full join (select * from telemetry.rollup_1h where series_id = any($1)) st
         on st.series_id = raw.series_id and st.bucket = raw.bucket
     ), judged as (
       select *, raw_n is null or st_n is null or raw_n <> st_n or raw_min <> st_min or raw_max <> st_max
         or abs(raw_sum - st_sum) > $2 * greatest(1, abs(raw_sum)) as bad
       from cmp
     )
     select kind, count(*)::int as buckets, count(*) filter (where bad)::int as bad,
       (array_agg(format('rollup_%s series %s %s: raw n %s sum %s, stored n %s sum %s', kind, series_id,
          to_char(bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'), raw_n, raw_sum, st_n, st_sum)
        order by series_id, bucket) filter (where bad))[1:5] as examples
     from judged group by kind`,
    [ids, SUM_TOLERANCE],
  );
  const latest = await ctx.pgc.query<{ series: number; raw: string | null; kept: string | null }>(
    `select s.id as series, r.raw, l.kept
     from unnest($1::int[]) as s(id)
     left join lateral (select concat_ws(' ', x.ts, x.value, x.quality) as raw from telemetry.readings x
       where x.series_id = s.id order by x.ts desc limit 1) r on true
     left join lateral (select concat_ws(' ', y.ts, y.value, y.quality) as kept from telemetry.latest y
       where y.series_id = s.id) l on true
     where r.raw is distinct from l.kept`,
    [ids],
  );
  const of = (kind: string) => rows.find((r) => r.kind === kind);
  const examples = [
    ...rows.flatMap((r) => r.examples ?? []),
    ...latest.rows.slice(0, 5).map((r) => `latest of series ${r.series}: newest raw row ${r.raw}, kept ${r.kept}`),
  ];
  return {
    buckets1m: of('1m')?.buckets ?? 0,
    buckets1h: of('1h')?.buckets ?? 0,
    series: ids.length,
    rollupMismatches: rows.reduce((a, r) => a + r.bad, 0) + latest.rows.length,
    examples,
    seconds: (performance.now() - started) / 1000,
  };
}

export function sayRollups(c: RollupCheck): void {
  say(
    `- rollups: ${int(c.buckets1m)} minute and ${int(c.buckets1h)} hour buckets and the latest value of ` +
      `${int(c.series)} series recomputed from the raw rows (${f1(c.seconds)} s): ${c.rollupMismatches} mismatches`,
  );
  for (const e of c.examples) say(`  ! ${e}`);
  if (!c.buckets1m || !c.buckets1h) say('  ! no buckets to compare: the check saw nothing');
}
