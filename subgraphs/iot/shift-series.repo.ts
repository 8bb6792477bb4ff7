import { sql } from 'kysely';
import type { ScopeFilter } from '../../lib/auth/scope.ts';
import { inList, type Db } from '../../lib/db/index.ts';
import type * as G from './__generated__/types.ts';

/**
 * Aggregates per shift of each machine's line: the 1-minute rollup rows from a shift's start to its end, as the
 * MES or the plan stored them (instants: a night shift across a DST change is 7 or 9 hours, as it was worked).
 * Shifts overlapping [from, to) count whole. Exact where shifts start and end on whole minutes, as plans do; one
 * shift row per operator, so the windows are taken once each.
 */
export async function shiftSeries(db: Db, f: G.SeriesFilter, range: { from: Date; to: Date }, scope: ScopeFilter) {
  let q = db
    .selectFrom('telemetry.rollup_1m as r')
    .innerJoin('telemetry.series as s', 's.id', 'r.seriesId')
    .innerJoin('iot.sensors as sn', 'sn.id', 's.sensorId')
    .innerJoin('production.machines as m', 'm.id', 'sn.machineId')
    .innerJoin(
      (eb) =>
        eb
          .selectFrom('production.shifts')
          .select(['lineId', 'shiftNumber', 'startsAt', 'endsAt'])
          .distinct()
          .where('startsAt', '<', range.to)
          .where('endsAt', '>', range.from)
          .as('sh'),
      (j) =>
        j
          .onRef('sh.lineId', '=', 'm.lineId')
          .onRef('r.bucket', '>=', 'sh.startsAt')
          .onRef('r.bucket', '<', 'sh.endsAt'),
    )
    .select([
      'sn.id as sensorId',
      'sn.machineId',
      'sn.type as signal',
      'sn.unit',
      'sh.startsAt as b',
      'sh.endsAt as end',
      'sh.shiftNumber',
      sql<number>`sum(r.sum) / sum(r.n)`.as('avg'),
      sql<number>`min(r.min)`.as('min'),
      sql<number>`max(r.max)`.as('max'),
      sql<number>`sum(r.n)::int`.as('count'),
    ])
    // The coarse bounds use the rollup's index; shifts longer than two days are not plans this reads.
    .where('r.bucket', '>=', new Date(range.from.getTime() - 2 * 86_400_000))
    .where('r.bucket', '<', new Date(range.to.getTime() + 2 * 86_400_000));
  if (f.machineIds?.length) q = q.where('sn.machineId', 'in', f.machineIds);
  if (f.sensorIds?.length) q = q.where('sn.id', 'in', f.sensorIds);
  if (f.signals?.length) q = q.where('sn.type', 'in', f.signals);
  if (scope.machineIds) q = q.where('sn.machineId', 'in', inList(scope.machineIds));
  return q
    .groupBy(['sn.id', 'sn.machineId', 'sn.type', 'sn.unit', 'sh.startsAt', 'sh.endsAt', 'sh.shiftNumber'])
    .execute();
}
