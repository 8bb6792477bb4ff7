import { sql } from 'kysely';
import { withPgClient, type Db } from '../db/index.ts';
import type { AlertRow } from '../db/rows.ts';
import { encodeReadings } from './readings-binary.ts';
import {
  copyReadings,
  insertStates,
  isUniqueViolation,
  rollupsOf,
  type StoredState,
  writeReadingsKeyed,
} from './readings.repo.ts';
import type { StoredReading } from './types.ts';

/** The pipeline's SQL: what it caches in memory, and the one transaction that commits a batch. */

export const loadSensorSeries = (db: Db) =>
  db
    .selectFrom('telemetry.series as s')
    .innerJoin('iot.sensors as sn', 'sn.id', 's.sensorId')
    .innerJoin('production.machines as m', 'm.id', 's.machineId')
    .select(['sn.id as sensorId', 's.id as seriesId', 's.machineId', 'm.lineId', 'sn.type', 'sn.unit', 'sn.isActive'])
    .execute();

/** Historian tags' series, with the mapping's signal, unit, scale and offset. */
export const loadTagSeries = (db: Db) =>
  db
    .selectFrom('telemetry.series as s')
    .innerJoin('historian.tagMappings as t', 't.id', 's.tagMappingId')
    .innerJoin('production.machines as m', 'm.id', 's.machineId')
    .select([
      't.id as tagMappingId',
      's.id as seriesId',
      's.machineId',
      'm.lineId',
      't.signalType',
      't.unit',
      't.isActive',
      't.scaleFactor',
      't.valueOffset',
    ])
    .execute();

export const loadActiveRules = (db: Db) =>
  db.selectFrom('quality.rangeRules').selectAll().where('isActive', '=', true).execute();

/** Work orders (not cancelled) and shifts that overlap [from, to), for the interval index. */
export async function loadSchedule(db: Db, from: Date, to: Date) {
  const [orders, shifts] = await Promise.all([
    db
      .selectFrom('production.workOrders as w')
      .leftJoin('production.recipes as r', 'r.id', 'w.recipeId')
      .select([
        'w.id',
        'w.lineId',
        'w.recipeId',
        'w.status',
        'w.priority',
        'w.plannedStart',
        'w.plannedEnd',
        'w.actualStart',
        'w.actualEnd',
        sql<string | null>`coalesce(w.product_id, r.product_id)`.as('productId'),
      ])
      .where('w.status', '!=', 'CANCELLED')
      .where(sql<boolean>`coalesce(w.actual_start, w.planned_start) < ${to}`)
      .where(
        sql<boolean>`coalesce(w.actual_end,
          case when w.status = 'ACTIVE' then 'infinity'::timestamptz else w.planned_end end) > ${from}`,
      )
      .execute(),
    db
      .selectFrom('production.shifts')
      .select(['id', 'lineId', 'operatorId', 'startsAt', 'endsAt'])
      .where('startsAt', '<', to)
      .where('endsAt', '>', from)
      .execute(),
  ]);
  return { orders, shifts };
}

export interface NewDeadLetter {
  source: number;
  reason: string;
  detail: string;
  topic?: string | null;
  payload?: Buffer | null;
  sensorId?: string | null;
  machineId?: string | null;
  dedupeKey?: string | null;
}
export interface NewAlert {
  machineId: string;
  /** Null for a historian tag's series. */
  sensorId: string | null;
  type: 'OUT_OF_RANGE';
  severity: 'INFO' | 'WARNING';
  ts: Date;
  metric: string;
  value: number;
  expectedMin: number;
  expectedMax: number;
  message: string;
}

/** What a commit stored: the alerts as stored, and which rows were new (`'all'`: every one of them). */
export interface CommitResult {
  alerts: AlertRow[];
  newReadings: Set<string> | 'all';
  newStates: Set<string>;
}

/**
 * Readings, states, dead letters and alerts of one batch in ONE transaction: either all are committed (and the
 * sources may acknowledge) or none (and they redeliver).
 */
export async function commitBatch(
  db: Db,
  readings: StoredReading[],
  deadLetters: NewDeadLetter[],
  alerts: NewAlert[],
  states: StoredState[] = [],
): Promise<CommitResult> {
  // The cheap way first: COPY, with rollups aggregated in memory. A batch holding a redelivered reading fails
  // whole (unique violation) and is written again with the idempotent insert; redeliveries are rare.
  // Encoded and aggregated before a connection is taken: the transaction then only waits for Postgres.
  const copy = readings.length ? { data: encodeReadings(readings), rollups: rollupsOf(readings) } : undefined;
  try {
    return await withPgClient(db, (client, onClient) =>
      onClient.transaction().execute(async (trx) => {
        if (copy) {
          await copyReadings(client, copy.data);
          await copy.rollups.execute(trx);
        }
        return { ...(await writeRest(trx, deadLetters, alerts, states)), newReadings: 'all' as const };
      }),
    );
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    return db.transaction().execute(async (trx) => {
      const newReadings = await writeReadingsKeyed(trx, readings);
      return { ...(await writeRest(trx, deadLetters, alerts, states)), newReadings };
    });
  }
}

async function writeRest(trx: Db, deadLetters: NewDeadLetter[], alerts: NewAlert[], states: StoredState[]) {
  // A keyed dead letter already stored (its page read again) is not stored twice.
  if (deadLetters.length)
    await trx
      .insertInto('quality.deadLetters')
      .values(deadLetters)
      .onConflict((oc) => oc.doNothing())
      .execute();
  const newStates = await insertStates(trx, states);
  // The stored alerts (ids included) go to the live channel once committed; they are few per batch.
  const stored = alerts.length ? await trx.insertInto('quality.alerts').values(alerts).returningAll().execute() : [];
  return { alerts: stored, newStates };
}

export const insertLossEvent = (
  db: Db,
  e: { source: number; kind: string; detail: string; expected?: number; got?: number; stream?: string },
) => db.insertInto('quality.lossEvents').values(e).execute();

/** STALE alerts for sensors that went silent with their Sparkplug node or device (NDEATH/DDEATH). */
export const insertStaleAlerts = (
  db: Db,
  sensors: { sensorId: string; machineId: string; signal: string }[],
  reason: string,
  at: Date,
) =>
  sensors.length
    ? db
        .insertInto('quality.alerts')
        .values(
          sensors.map((s) => ({
            machineId: s.machineId,
            sensorId: s.sensorId,
            type: 'STALE' as const,
            severity: 'WARNING' as const,
            ts: at,
            metric: s.signal,
            message: reason,
          })),
        )
        .returningAll()
        .execute()
    : Promise.resolve([] as AlertRow[]);
