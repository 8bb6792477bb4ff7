import { offsetAt } from '../../lib/time/zoned.ts';
import { shiftSeries } from './shift-series.repo.ts';
import { inList, type Db } from '../../lib/db/index.ts';
import { changes, pageOf } from '../../lib/db/page.ts';
import { sql } from 'kysely';
import type { AggregatedSeriesRow, ReadingRow } from '../../lib/db/rows.ts';
import type { ScopeFilter } from '../../lib/auth/scope.ts';
import type { PageArgs } from '../../lib/pagination.ts';
import { SOURCE_CODES } from '../../lib/telemetry/sources.ts';
import type * as G from './__generated__/types.ts';

/** IoT's SQL: sensors, and the readings of their telemetry series. Scope filters apply to every list. */

// ---- sensors
export function listSensors(db: Db, f: G.SensorFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('iot.sensors').selectAll();
  if (f?.machineId) q = q.where('machineId', '=', f.machineId);
  if (f?.machineIds) q = q.where('machineId', 'in', inList(f.machineIds));
  if (f?.type) q = q.where('type', '=', f.type);
  if (f?.protocol) q = q.where('protocol', '=', f.protocol);
  if (f?.isActive != null) q = q.where('isActive', '=', f.isActive);
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return pageOf(q, page);
}
export const sensorsByIds = (db: Db, ids: readonly string[]) =>
  db.selectFrom('iot.sensors').selectAll().where('id', 'in', ids).execute();
export const sensorsByMachines = (db: Db, machineIds: readonly string[], scope: ScopeFilter) => {
  let q = db.selectFrom('iot.sensors').selectAll().where('machineId', 'in', machineIds);
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return q.orderBy('id').execute();
};

/** A sensor and its telemetry series are created together: ingestion finds a sensor's series by sensor_id. */
export const insertSensor = (db: Db, i: G.CreateSensorInput) =>
  db.transaction().execute(async (trx) => {
    const sensor = await trx
      .insertInto('iot.sensors')
      .values({
        id: i.id,
        name: i.name,
        type: i.type,
        unit: i.unit,
        machineId: i.machineId,
        protocol: i.protocol,
        topic: i.topic ?? null,
        endpoint: i.endpoint ?? null,
        pollIntervalSeconds: i.pollIntervalSeconds ?? null,
        minExpected: i.minExpected ?? null,
        maxExpected: i.maxExpected ?? null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('telemetry.series')
      .values({ machineId: sensor.machineId, signal: sensor.type, unit: sensor.unit, sensorId: sensor.id })
      .execute();
    return sensor;
  });

/** The series mirrors the sensor's type and unit, so a rename must reach both in one transaction. */
export const updateSensor = (db: Db, id: string, i: G.UpdateSensorInput) =>
  db.transaction().execute(async (trx) => {
    const sensor = await trx
      .updateTable('iot.sensors')
      .set({ ...changes(i), updatedAt: new Date() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    const series = changes({ signal: i.type, unit: i.unit });
    if (sensor && Object.keys(series).length)
      await trx.updateTable('telemetry.series').set(series).where('sensorId', '=', id).execute();
    return sensor;
  });

// ---- readings (only sensor series: historian tags have no Sensor to show)
export function listReadings(
  db: Db,
  by: { sensorId?: string | null; machineId?: string | null },
  range: { from: Date; to: Date },
  scope: ScopeFilter,
  page: PageArgs,
) {
  let q = db
    .selectFrom('telemetry.readings as r')
    .innerJoin('telemetry.series as s', 's.id', 'r.seriesId')
    .select([
      's.sensorId',
      's.machineId',
      'r.seriesId',
      'r.ts',
      'r.value',
      'r.quality',
      'r.source',
      'r.workOrderId',
      'r.operatorId',
    ])
    .where('s.sensorId', 'is not', null)
    .where('r.ts', '>=', range.from)
    .where('r.ts', '<', range.to)
    .$narrowType<{ sensorId: string }>();
  if (by.sensorId) q = q.where('s.sensorId', '=', by.sensorId);
  if (by.machineId) q = q.where('s.machineId', '=', by.machineId);
  if (scope.machineIds) q = q.where('s.machineId', 'in', inList(scope.machineIds));
  return pageOf(q, page, { sortCol: 'r.ts', idCol: 'r.seriesId' });
}

/**
 * The newest reading per sensor series, from telemetry.latest. Its context (source, work order, operator)
 * lives on the reading row; should that row be gone (retention), the sensor's protocol stands in for the source.
 */
export async function latestReadings(
  db: Db,
  col: 'sensorId' | 'machineId',
  ids: readonly string[],
): Promise<ReadingRow[]> {
  const rows = await db
    .selectFrom('telemetry.latest as l')
    .innerJoin('telemetry.series as s', 's.id', 'l.seriesId')
    .innerJoin('iot.sensors as sn', 'sn.id', 's.sensorId')
    .leftJoin('telemetry.readings as r', (j) => j.onRef('r.seriesId', '=', 'l.seriesId').onRef('r.ts', '=', 'l.ts'))
    .select([
      'sn.id as sensorId',
      's.machineId',
      'l.ts',
      'l.value',
      'l.quality',
      'r.source',
      'sn.protocol',
      'r.workOrderId',
      'r.operatorId',
    ])
    .where(col === 'sensorId' ? 's.sensorId' : 's.machineId', 'in', ids)
    .orderBy('sn.id')
    .execute();
  return rows.map(({ protocol, ...r }) => ({ ...r, source: r.source ?? SOURCE_CODES[protocol] }));
}

// ---- aggregated series, from the rollups
const BUCKETS = {
  ONE_MINUTE: { table: 'telemetry.rollup_1m', width: '1 minute', ms: 60_000 },
  FIVE_MINUTES: { table: 'telemetry.rollup_1m', width: '5 minutes', ms: 300_000 },
  FIFTEEN_MINUTES: { table: 'telemetry.rollup_1m', width: '15 minutes', ms: 900_000 },
  ONE_HOUR: { table: 'telemetry.rollup_1h', width: '1 hour', ms: 3_600_000 },
  ONE_DAY: { table: 'telemetry.rollup_1h', width: '1 day', ms: 86_400_000 },
  // Shifts come from production.shifts (shift-series.repo.ts); ms bounds the range as a day would.
  SHIFT: { table: 'telemetry.rollup_1m', width: '1 day', ms: 86_400_000 },
  // A local day is 23 to 25 hours; ms bounds the number of buckets (and the rounding, done in the zone below).
  LOCAL_DAY: { table: 'telemetry.rollup_1h', width: '1 day', ms: 86_400_000 },
} as const;
export const bucketMs = (b: G.Bucket) => BUCKETS[b].ms;

/**
 * Re-buckets the nearest rollup (5 min from 1-minute rows, days from hourly rows) with date_bin; the average is
 * sum/count over the rollup rows, so it is exact, not an average of averages.
 */
export async function aggregatedSeries(
  db: Db,
  f: G.SeriesFilter,
  range: { from: Date; to: Date },
  bucket: G.Bucket,
  scope: ScopeFilter,
): Promise<AggregatedSeriesRow[]> {
  if (bucket === 'SHIFT') return grouped(await shiftSeries(db, f, range, scope));
  const b = BUCKETS[bucket];
  type Source = { table: string; zones?: string[] };
  const run = ({ table, zones }: Source) => {
    // A local day: the rollup rows from the zone's midnight to its next (date_trunc in the zone, DST included),
    // [from, to) rounded out to whole local days; else UTC buckets of the width, rounded out by the caller.
    const local = zones !== undefined;
    const bucketOf = local
      ? sql<Date>`(date_trunc('day', r.bucket at time zone st.timezone) at time zone st.timezone)`
      : sql<Date>`date_bin(${sql.lit(b.width)}::interval, r.bucket, timestamptz 'epoch')`;
    let q = db
      .selectFrom(`${table} as r` as 'telemetry.rollup_1m as r')
      .innerJoin('telemetry.series as s', 's.id', 'r.seriesId')
      .innerJoin('iot.sensors as sn', 'sn.id', 's.sensorId')
      .innerJoin('production.machines as m', 'm.id', 'sn.machineId')
      .innerJoin('production.lines as l', 'l.id', 'm.lineId')
      .innerJoin('production.sites as st', 'st.id', 'l.siteId')
      .select([
        'sn.id as sensorId',
        'sn.machineId',
        'sn.type as signal',
        'sn.unit',
        bucketOf.as('b'),
        sql<number>`sum(r.sum) / sum(r.n)`.as('avg'),
        sql<number>`min(r.min)`.as('min'),
        sql<number>`max(r.max)`.as('max'),
        sql<number>`sum(r.n)::int`.as('count'),
      ]);
    if (local) {
      // The coarse bounds use the index; the exact ones are the zone's midnights around [from, to).
      q = q
        .where('st.timezone', 'in', zones.length ? zones : [''])
        // Two days either side: a local day is up to 25 hours, and its midnight up to 14 hours off UTC's.
        .where('r.bucket', '>=', new Date(range.from.getTime() - 2 * 86_400_000))
        .where('r.bucket', '<', new Date(range.to.getTime() + 2 * 86_400_000))
        .where(
          'r.bucket',
          '>=',
          sql<Date>`(date_trunc('day', ${range.from}::timestamptz at time zone st.timezone) at time zone st.timezone)`,
        )
        .where(
          'r.bucket',
          '<',
          sql<Date>`((date_trunc('day', (${range.to}::timestamptz - interval '1 microsecond') at time zone
            st.timezone) + interval '1 day') at time zone st.timezone)`,
        );
    } else q = q.where('r.bucket', '>=', range.from).where('r.bucket', '<', range.to);
    if (f.machineIds?.length) q = q.where('sn.machineId', 'in', f.machineIds);
    if (f.sensorIds?.length) q = q.where('sn.id', 'in', f.sensorIds);
    if (f.signals?.length) q = q.where('sn.type', 'in', f.signals);
    if (scope.machineIds) q = q.where('sn.machineId', 'in', inList(scope.machineIds));
    return q.groupBy(['sn.id', 'sn.machineId', 'sn.type', 'sn.unit', 'b']).execute();
  };
  let sources: Source[] = [{ table: b.table }];
  if (bucket === 'LOCAL_DAY') {
    // Hourly rollups serve a zone whose midnights fall on UTC hours; a zone 30 or 45 minutes off (India, Nepal,
    // Newfoundland, Adelaide) is served from the 1-minute rollups, so every local day is exact.
    const zones = (await db.selectFrom('production.sites').select('timezone').distinct().execute()).map(
      (r) => r.timezone,
    );
    const hourly = zones.filter((z) => wholeHourOffsets(z, range));
    sources = [
      { table: 'telemetry.rollup_1h', zones: hourly },
      { table: 'telemetry.rollup_1m', zones: zones.filter((z) => !hourly.includes(z)) },
    ].filter((x) => x.zones.length);
  }
  return grouped((await Promise.all(sources.map(run))).flat());
}

type PointRow = {
  sensorId: string;
  machineId: string;
  signal: string;
  unit: string;
  b: Date;
  end?: Date;
  shiftNumber?: number;
  avg: number;
  min: number;
  max: number;
  count: number;
};

/** Rows of (sensor, bucket) as one series per sensor, in sensor then time order. */
function grouped(rows: PointRow[]): AggregatedSeriesRow[] {
  rows.sort((x, y) => (x.sensorId < y.sensorId ? -1 : x.sensorId > y.sensorId ? 1 : x.b.getTime() - y.b.getTime()));
  const out: AggregatedSeriesRow[] = [];
  for (const r of rows) {
    let cur = out.at(-1);
    if (cur?.sensorId !== r.sensorId) {
      cur = { sensorId: r.sensorId, machineId: r.machineId, signal: r.signal, unit: r.unit, points: [] };
      out.push(cur);
    }
    cur.points.push({
      bucket: r.b,
      avg: r.avg,
      min: r.min,
      max: r.max,
      count: r.count,
      bucketEnd: r.end ?? null,
      shiftNumber: r.shiftNumber ?? null,
    });
  }
  return out;
}

/** Whether `zone`'s offset is a whole number of hours through `range` (looked at every 12 hours and its ends). */
function wholeHourOffsets(zone: string, range: { from: Date; to: Date }): boolean {
  const from = range.from.getTime() - 86_400_000;
  const to = range.to.getTime() + 86_400_000;
  // Offsets change at most a few times a year: 12-hourly looks catch every one (capped for very long ranges,
  // where a weekly look still catches a seasonal change).
  const step = Math.max(12 * 3_600_000, (to - from) / 2000);
  for (let t = from; t < to + step; t += step) if (offsetAt(zone, Math.min(t, to)) % 3_600_000 !== 0) return false;
  return true;
}

export const listHttpEndpoints = (db: Db) => db.selectFrom('iot.httpEndpoints').selectAll().orderBy('name').execute();

export const listTelemetrySources = (db: Db) =>
  db.selectFrom('iot.telemetrySources').selectAll().orderBy('worker').orderBy('name').execute();

/** The sensors of some machines, by machine and type (what a sensor log names). */
export const sensorsOfMachines = (db: Db, machineIds: readonly string[]) =>
  machineIds.length
    ? db
        .selectFrom('iot.sensors')
        .select(['id', 'machineId', 'type', 'isActive'])
        .where('machineId', 'in', [...machineIds])
        .execute()
    : Promise.resolve([]);

/** The time zones of the plant's sites. */
export const siteTimeZones = async (db: Db) =>
  (await db.selectFrom('production.sites').select('timezone').distinct().execute()).map((r) => r.timezone);
