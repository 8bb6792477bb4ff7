import { badInput, fromPgError, notFound } from '../../lib/errors.ts';
import { guard } from '../../lib/subgraph/guard.ts';
import { scalarResolvers } from '../../lib/subgraph/scalars.ts';
import { previewImport, type UploadedFile } from './imports/preview.ts';
import { requireInScope, requireVisible } from '../../lib/subgraph/scope-checks.ts';
import { SOURCE_CODES, sourceName, type SourceName } from '../../lib/telemetry/sources.ts';
import { liveStream, scopedInterest, setOf } from '../../lib/subgraph/live-interest.ts';
import type { LiveEvent } from '../../lib/subgraph/live-feed.ts';
import type { ReadingRow } from '../../lib/db/rows.ts';
import type { Context } from './context.ts';
import type * as G from './__generated__/types.ts';
import * as repo from './iot.repo.ts';

const orThrow =
  <T>(what: string, id: string) =>
  (row: T | null | undefined) =>
    row ?? Promise.reject(notFound(what, id));
const pg = (what: string) => (e: unknown) => fromPgError(e, what);

// A month of raw readings is already large; longer spans belong to the rollups.
const MAX_READING_SPAN_MS = 31 * 24 * 3600 * 1000;

export const resolvers: G.Resolvers<Context> = {
  ...scalarResolvers,
  Query: {
    sensors: async (_, a, ctx) => repo.listSensors(ctx.db, a.filter, await ctx.scope.filter(), a),
    sensor: async (_, { id }, ctx) =>
      requireVisible(ctx, 'Sensor', id, await ctx.loaders.sensor.load(id), (s) => ({ machineId: s.machineId })),
    readings: async (_, a, ctx) => {
      const range = readingRange(a);
      // A named machine or sensor on another line is a direct id: refused, not shown as an empty list.
      const machineId = a.machineId ?? (await ctx.loaders.sensor.load(a.sensorId!))?.machineId;
      if (machineId) await requireInScope(ctx, { machineId });
      return repo.listReadings(ctx.db, a, range, await ctx.scope.filter(), a);
    },
    // Endpoints are plant configuration, not placed on a line: scoped tokens see none.
    httpEndpoints: (_, __, ctx) => (ctx.scope.unrestricted ? repo.listHttpEndpoints(ctx.db) : []),
    telemetrySources: (_, __, ctx) => (ctx.scope.unrestricted ? repo.listTelemetrySources(ctx.db) : []),
    aggregatedSeries: async (_, a, ctx) => {
      const range = seriesRange(a.from, a.to, a.bucket);
      for (const machineId of a.filter.machineIds ?? []) await requireInScope(ctx, { machineId });
      return repo.aggregatedSeries(ctx.db, a.filter, range, a.bucket, await ctx.scope.filter());
    },
  },
  Subscription: {
    sensorReadings: {
      subscribe: async (_, { filter }, ctx) => {
        // A sensor named directly must exist and be visible, like any direct id.
        for (const id of filter?.sensorIds ?? [])
          await requireVisible(ctx, 'Sensor', id, await ctx.loaders.sensor.load(id), (x) => ({
            machineId: x.machineId,
          }));
        const sensors = setOf(filter?.sensorIds);
        const types = setOf(filter?.sensorTypes);
        const interest = await scopedInterest<'readings'>(
          ctx,
          filter,
          (e) => (!sensors || sensors.has(e.sensorId)) && (!types || types.has(e.sensorType)),
        );
        return liveStream(ctx, 'readings', interest);
      },
      resolve: (e: LiveEvent<'readings'>) => fromLive(e),
    },
  },
  Mutation: {
    createSensor: guard({ role: 'engineer', audit: true, target: (a) => a.input.id }, async (a, ctx) => {
      checkSensor(a.input);
      await requireInScope(ctx, { machineId: a.input.machineId });
      return repo.insertSensor(ctx.db, a.input).catch(pg('Sensor'));
    }),
    importFile: guard({ role: 'engineer', audit: true, target: (a) => a.kind }, async (a, ctx) =>
      previewImport(ctx.db, (await a.file) as UploadedFile, a.kind, a.options),
    ),
    updateSensor: guard({ role: 'engineer', audit: true, target: (a) => a.id }, async (a, ctx) => {
      const cur = await repo
        .sensorsByIds(ctx.db, [a.id])
        .then(([s]) => s)
        .then(orThrow('Sensor', a.id));
      await requireInScope(ctx, { machineId: cur.machineId });
      // Omitted fields keep their stored values, so the bounds are checked as they will be after the update.
      checkSensor({
        pollIntervalSeconds: a.input.pollIntervalSeconds,
        minExpected: a.input.minExpected ?? cur.minExpected,
        maxExpected: a.input.maxExpected ?? cur.maxExpected,
      });
      return repo.updateSensor(ctx.db, a.id, a.input).catch(pg('Sensor')).then(orThrow('Sensor', a.id));
    }),
  },
  Machine: {
    __resolveReference: async (ref, ctx) => ((await ctx.scope.allowsMachine(ref.id)) ? { id: ref.id } : null),
    sensors: (m, _, ctx) => ctx.loaders.sensorsByMachine.load(m.id),
    latestReadings: (m, _, ctx) => ctx.loaders.latestByMachine.load(m.id),
  },
  Sensor: {
    __resolveReference: async (ref, ctx) => {
      const s = await ctx.loaders.sensor.load(ref.id);
      return s && (await ctx.scope.allowsMachine(s.machineId)) ? s : null;
    },
    machine: (s) => ({ id: s.machineId }),
    latestReading: (s, _, ctx) => ctx.loaders.latestBySensor.load(s.id),
  },
  HttpEndpointStatus: {
    readings: (e) => Number(e.readings),
    deadLetters: (e) => Number(e.deadLetters),
    skippedPolls: (e) => Number(e.skippedPolls),
  },
  AggregatedSeries: {
    sensor: (s, _, ctx) => ctx.loaders.sensor.load(s.sensorId).then(orThrow('Sensor', s.sensorId)),
    machine: (s) => ({ id: s.machineId }),
  },
  SensorReading: {
    sensor: (r, _, ctx) => ctx.loaders.sensor.load(r.sensorId).then(orThrow('Sensor', r.sensorId)),
    machine: (r) => ({ id: r.machineId }),
    source: (r) => sourceName(r.source),
    workOrder: (r) => (r.workOrderId ? { id: r.workOrderId } : null),
  },
};

/** A live reading as the SensorReading resolvers expect a stored row. */
const fromLive = (e: LiveEvent<'readings'>): ReadingRow => ({
  ...e,
  ts: new Date(e.ts),
  source: SOURCE_CODES[e.source as SourceName],
});

function checkSensor(s: {
  pollIntervalSeconds?: number | null;
  minExpected?: number | null;
  maxExpected?: number | null;
}) {
  if (s.pollIntervalSeconds != null && s.pollIntervalSeconds <= 0) {
    throw badInput('pollIntervalSeconds must be greater than 0', { argument: 'pollIntervalSeconds' });
  }
  if (s.minExpected != null && s.maxExpected != null && s.minExpected > s.maxExpected) {
    throw badInput('minExpected must not be greater than maxExpected', { argument: 'minExpected' });
  }
}

/** Exactly one of sensorId/machineId, and a non-empty window of at most 31 days. */
function readingRange(a: G.QueryReadingsArgs): { from: Date; to: Date } {
  if (!a.sensorId === !a.machineId)
    throw badInput('Give exactly one of sensorId or machineId', { argument: 'sensorId' });
  const from = new Date(a.from);
  const to = new Date(a.to);
  if (!(from < to)) throw badInput('from must be before to', { argument: 'from' });
  if (to.getTime() - from.getTime() > MAX_READING_SPAN_MS)
    throw badInput('The range from..to may span at most 31 days', { argument: 'to' });
  return { from, to };
}

/** At most this many buckets per series: a BI tool asking for a year by minute gets told, not a timeout. */
const MAX_BUCKETS = 10_000;

/** [from, to) rounded out to whole buckets, and bounded. */
function seriesRange(fromArg: Date | string, toArg: Date | string, bucket: G.Bucket): { from: Date; to: Date } {
  const ms = repo.bucketMs(bucket);
  const t0 = new Date(fromArg).getTime();
  const t1 = new Date(toArg).getTime();
  // Local days and shifts are rounded out by the query, to each site's midnights or each line's shifts.
  const local = bucket === 'LOCAL_DAY' || bucket === 'SHIFT';
  const from = new Date(local ? t0 : Math.floor(t0 / ms) * ms);
  const to = new Date(local ? t1 : Math.ceil(t1 / ms) * ms);
  if (!(from < to)) throw badInput('from must be before to', { argument: 'from' });
  if ((to.getTime() - from.getTime()) / ms > MAX_BUCKETS) {
    throw badInput(
      `The range holds more than ${MAX_BUCKETS} ${bucket} buckets; choose a larger bucket or a shorter range`,
      { argument: 'bucket' },
    );
  }
  return { from, to };
}
