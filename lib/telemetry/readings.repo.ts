import { sql, type RawBuilder } from 'kysely';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Db } from '../db/index.ts';
import { COPY_COLUMNS } from './readings-binary.ts';
import type { StoredReading } from './types.ts';

/** Both write paths merge a batch's rollup rows (alias r) and latest values (alias l) alike. */
const ADD_TO_ROLLUP = sql`on conflict (series_id, bucket) do update
  set n = r.n + excluded.n, sum = r.sum + excluded.sum,
    min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)`;
const NEWER_LATEST = sql`on conflict (series_id) do update
  set ts = excluded.ts, value = excluded.value, quality = excluded.quality
  where excluded.ts > l.ts`;

/**
 * Writes a batch in ONE statement, idempotently: a redelivered (series, ts) is a no-op (ON CONFLICT DO NOTHING),
 * and the 1-minute and 1-hour rollups and the latest value per series are updated from only the rows that were
 * really inserted, so a redelivery never counts twice. The live pipeline's fast path (COPY, then rollupsOf)
 * falls back to this when a batch meets a stored reading; backfills and the demo seed use it directly.
 */
export async function writeReadings(db: Db, batch: readonly StoredReading[]): Promise<number> {
  if (batch.length === 0) return 0;
  const { rows } = await upsertReadings(db, batch, sql`select count(*)::int as inserted from ins`);
  return (rows[0] as { inserted?: number } | undefined)?.inserted ?? 0;
}

/**
 * writeReadings, answering which rows were newly stored (`readingKey`s), so a caller can tell each of its sources
 * how many of its readings were duplicates.
 */
export async function writeReadingsKeyed(db: Db, batch: readonly StoredReading[]): Promise<Set<string>> {
  if (batch.length === 0) return new Set();
  const { rows } = await upsertReadings(
    db,
    batch,
    sql`select series_id, round(extract(epoch from ts) * 1000)::int8 as ms from ins`,
  );
  return new Set((rows as { seriesId: number; ms: string }[]).map((r) => readingKey(r.seriesId, Number(r.ms))));
}

/** A stored row's identity (its primary key), as writeReadingsKeyed and insertStates answer them. */
export const readingKey = (seriesId: number, ms: number): string => `${seriesId}:${ms}`;

function upsertReadings(db: Db, batch: readonly StoredReading[], answer: RawBuilder<unknown>) {
  const n = batch.length;
  const series = new Array<number>(n),
    ms = new Array<number>(n),
    value = new Array<number>(n),
    quality = new Array<number>(n),
    source = new Array<number>(n);
  const wo = new Array<string>(n),
    shift = new Array<string>(n),
    recipe = new Array<string>(n),
    op = new Array<string>(n);
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
  // Rollup rows are touched in key order to keep concurrent batches from deadlocking; buckets are UTC (date_bin
  // from the epoch), as the queries that read them and rollupsOf bucket them.
  return sql`
    with input as (
      select series_id, timestamptz 'epoch' + ms * interval '1 millisecond' as ts, value, quality, source,
        work_order_id, shift_id, recipe_id, operator_id
      from unnest(
        ${lit(series)}::int[], ${lit(ms)}::int8[], ${lit(value)}::float8[], ${lit(quality)}::int2[],
        ${lit(source)}::int2[],
        ${lit(wo)}::uuid[], ${lit(shift)}::uuid[], ${lit(recipe)}::uuid[], ${lit(op)}::text[]
      ) as t(series_id, ms, value, quality, source, work_order_id, shift_id, recipe_id, operator_id)
    ),
    ins as (
      insert into telemetry.readings (series_id, ts, value, quality, source, work_order_id, shift_id, recipe_id,
        operator_id)
      select * from input
      on conflict do nothing
      returning series_id, ts, value, quality
    ),
    r1m as (
      insert into telemetry.rollup_1m as r (series_id, bucket, n, sum, min, max)
      select series_id, date_bin('1 minute', ts, timestamptz 'epoch'), count(*), sum(value), min(value), max(value)
      from ins group by 1, 2 order by 1, 2
      ${ADD_TO_ROLLUP}
    ),
    r1h as (
      insert into telemetry.rollup_1h as r (series_id, bucket, n, sum, min, max)
      select series_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*), sum(value), min(value), max(value)
      from ins group by 1, 2 order by 1, 2
      ${ADD_TO_ROLLUP}
    ),
    lat as (
      insert into telemetry.latest as l (series_id, ts, value, quality)
      select distinct on (series_id) series_id, ts, value, quality from ins order by series_id, ts desc
      ${NEWER_LATEST}
    )
    ${answer}
  `.execute(db);
}

/** A digital or enumeration value as stored: its name and code (telemetry.states). */
export interface StoredState {
  seriesId: number;
  ts: Date;
  code: number;
  name: string;
  quality: number;
  source: number;
}

/** States, idempotently like readings (a state at a stored (series, ts) is a no-op); answers the new rows' keys. */
export async function insertStates(db: Db, states: readonly StoredState[]): Promise<Set<string>> {
  if (states.length === 0) return new Set();
  const { rows } = await sql<{ seriesId: number; ms: string }>`
    insert into telemetry.states (series_id, ts, code, name, quality, source)
    select series_id, timestamptz 'epoch' + ms * interval '1 millisecond', code, name, quality, source
    from unnest(${states.map((s) => s.seriesId)}::int[], ${states.map((s) => s.ts.getTime())}::int8[],
      ${states.map((s) => s.code)}::int[], ${states.map((s) => s.name)}::text[],
      ${states.map((s) => s.quality)}::int2[], ${states.map((s) => s.source)}::int2[])
      as u(series_id, ms, code, name, quality, source)
    on conflict do nothing
    returning series_id, round(extract(epoch from ts) * 1000)::int8 as ms
  `.execute(db);
  return new Set(rows.map((r) => readingKey(r.seriesId, Number(r.ms))));
}

/**
 * The rollups and latest values of a batch whose readings were ALL just inserted (the COPY path), aggregated here
 * rather than by Postgres: the same rows and buckets writeReadings produces, for ~3 upserts per series instead
 * of a pass over the batch in SQL. In key order, like writeReadings, so concurrent batches cannot deadlock.
 * Built (aggregated) when called, executed when the caller's transaction is ready for it.
 */
export function rollupsOf(batch: readonly StoredReading[]): RawBuilder<unknown> {
  const m1 = aggregate(batch, 60_000),
    h1 = aggregate(batch, 3_600_000);
  const latest = new Map<number, StoredReading>();
  for (const r of batch) {
    const l = latest.get(r.seriesId);
    if (!l || r.ts.getTime() > l.ts.getTime()) latest.set(r.seriesId, r);
  }
  const last = [...latest.values()].sort((a, b) => a.seriesId - b.seriesId);
  const upsert = (table: 'rollup_1m' | 'rollup_1h', a: ReturnType<typeof aggregate>) => sql`
      insert into ${sql.table(`telemetry.${table}`)} as r (series_id, bucket, n, sum, min, max)
      select s, timestamptz 'epoch' + b * interval '1 millisecond', n, su, mi, ma
      from unnest(${lit(a.series)}::int[], ${lit(a.bucket)}::int8[], ${lit(a.n)}::int[], ${lit(a.sum)}::float8[],
        ${lit(a.min)}::float8[], ${lit(a.max)}::float8[]) as u(s, b, n, su, mi, ma)
      ${ADD_TO_ROLLUP}`;
  return sql`
    with r1m as (${upsert('rollup_1m', m1)}), r1h as (${upsert('rollup_1h', h1)})
    insert into telemetry.latest as l (series_id, ts, value, quality)
    select s, timestamptz 'epoch' + ms * interval '1 millisecond', v, q
    from unnest(${lit(last.map((r) => r.seriesId))}::int[], ${lit(last.map((r) => r.ts.getTime()))}::int8[],
      ${lit(last.map((r) => r.value))}::float8[], ${lit(last.map((r) => r.quality))}::int2[]) as u(s, ms, v, q)
    ${NEWER_LATEST}
  `;
}

/** Count, sum, min and max per (series, UTC bucket of `width` ms), sorted by series then bucket. */
function aggregate(batch: readonly StoredReading[], width: number) {
  type Agg = { series: number; bucket: number; n: number; sum: number; min: number; max: number };
  // Per series, its buckets: a live batch spans seconds (one or two each), a historian page minutes to hours. A
  // series' readings mostly come in time order, so its newest bucket is tried first, then a linear search.
  const bySeries = new Map<number, Agg[]>();
  for (const r of batch) {
    const bucket = Math.floor(r.ts.getTime() / width) * width;
    let list = bySeries.get(r.seriesId);
    if (!list) {
      list = [];
      bySeries.set(r.seriesId, list);
    }
    const tail = list[list.length - 1];
    const a = tail?.bucket === bucket ? tail : list.find((x) => x.bucket === bucket);
    if (!a) list.push({ series: r.seriesId, bucket, n: 1, sum: r.value, min: r.value, max: r.value });
    else {
      a.n++;
      a.sum += r.value;
      if (r.value < a.min) a.min = r.value;
      if (r.value > a.max) a.max = r.value;
    }
  }
  const rows = [...bySeries.values()].flat().sort((x, y) => x.series - y.series || x.bucket - y.bucket);
  return {
    series: rows.map((x) => x.series),
    bucket: rows.map((x) => x.bucket),
    n: rows.map((x) => x.n),
    sum: rows.map((x) => x.sum),
    min: rows.map((x) => x.min),
    max: rows.map((x) => x.max),
  };
}

/**
 * Array literals built here: node-postgres would otherwise escape every element of the arrays one by one, which
 * cost more CPU than the rest of the pipeline. Numbers and uuids need no quoting; timestamps travel as epoch ms.
 */
const lit = (xs: (string | number)[]) => `{${xs.join(',')}}`;

/** A text element of a Postgres array literal: always quoted, so NULL, commas and braces stay text. */
function quoteElement(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Readings into `telemetry.readings` with binary COPY: the cheapest way in for Postgres (no SQL to parse, no
 * text to convert, multi-row heap inserts with one WAL record per page instead of per row). Measured on the
 * 2-core machine: ~3.4 µs of Postgres CPU per row against ~5.9 for INSERT … SELECT FROM unnest (see
 * bench/README.md, "ingest"). COPY knows no ON CONFLICT: a batch holding an already stored (series, ts) fails whole
 * with a unique violation, and the caller writes it again idempotently (commitBatch in pipeline.repo.ts).
 * `data` is encodeReadings' output.
 */
export function copyReadings(client: pg.PoolClient, data: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stream = client.query(copyFrom(`copy telemetry.readings (${COPY_COLUMNS}) from stdin (format binary)`));
    stream.on('error', reject);
    stream.on('finish', () => resolve());
    stream.end(data);
  });
}

/** Postgres unique_violation: a COPY met a reading that is already stored (a redelivery). */
export const isUniqueViolation = (e: unknown): boolean => (e as { code?: string } | null)?.code === '23505';
