import type { Insertable } from 'kysely';
import type { AlertsTable } from '../../lib/db/types.ts';
import { sql } from 'kysely';
import { inList, isUuid, type Db } from '../../lib/db/index.ts';
import { changes, pageOf } from '../../lib/db/page.ts';
import type { ScopeFilter } from '../../lib/auth/scope.ts';
import type { PageArgs } from '../../lib/pagination.ts';
import { SOURCE_CODES } from '../../lib/telemetry/sources.ts';
import type * as G from './__generated__/types.ts';

/** Quality's SQL: range rules and the alerts raised against readings. Scope filters apply to every list. */

/** Open alerts shown per machine; older ones stay reachable through `alerts`. */
export const OPEN_ALERTS_PER_MACHINE = 100;

// Alert ids are int8: anything else cannot match, and sending it to Postgres would fail the query.
const INT8 = /^[0-9]{1,18}$/;

// ---- range rules
export function listRangeRules(db: Db, f: G.RangeRuleFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('quality.rangeRules').selectAll();
  if (f?.machineId) q = q.where('machineId', '=', f.machineId);
  if (f?.sensorId) q = q.where('sensorId', '=', f.sensorId);
  if (f?.isActive != null) q = q.where('isActive', '=', f.isActive);
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return pageOf(q, page, { sortCol: 'machineId', idCol: 'id' });
}
export const rangeRuleById = (db: Db, id: string) =>
  isUuid(id)
    ? db.selectFrom('quality.rangeRules').selectAll().where('id', '=', id).executeTakeFirst()
    : Promise.resolve(undefined);
export const rangeRulesByMachines = (db: Db, machineIds: readonly string[], scope: ScopeFilter) => {
  let q = db.selectFrom('quality.rangeRules').selectAll().where('machineId', 'in', machineIds);
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return q.orderBy('signalType').orderBy('id').execute();
};
export const insertRangeRule = (db: Db, i: G.CreateRangeRuleInput) =>
  db
    .insertInto('quality.rangeRules')
    .values({
      machineId: i.machineId,
      sensorId: i.sensorId ?? null,
      signalType: i.signalType,
      minValue: i.minValue,
      maxValue: i.maxValue,
      unit: i.unit ?? null,
      action: i.action ?? undefined,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
export const updateRangeRule = (db: Db, id: string, i: G.UpdateRangeRuleInput) =>
  db
    .updateTable('quality.rangeRules')
    .set({ ...changes(i), updatedAt: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();

// ---- alerts, newest first
export function listAlerts(db: Db, f: G.AlertFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('quality.alerts').selectAll();
  if (f?.machineId) q = q.where('machineId', '=', f.machineId);
  if (f?.machineIds) q = q.where('machineId', 'in', inList(f.machineIds));
  if (f?.type?.length) q = q.where('type', 'in', f.type);
  if (f?.severity?.length) q = q.where('severity', 'in', f.severity);
  if (f?.acknowledged != null) q = q.where('acknowledgedAt', f.acknowledged ? 'is not' : 'is', null);
  if (f?.from) q = q.where('ts', '>=', new Date(f.from));
  if (f?.to) q = q.where('ts', '<', new Date(f.to));
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return pageOf(q, page, { sortCol: 'ts', idCol: 'id', desc: true });
}
export const alertById = (db: Db, id: string) =>
  INT8.test(id)
    ? db.selectFrom('quality.alerts').selectAll().where('id', '=', id).executeTakeFirst()
    : Promise.resolve(undefined);

/**
 * The newest open alerts of each machine, at most OPEN_ALERTS_PER_MACHINE each: a lateral join walks the
 * partial index (machine_id, ts desc) per machine, so an alert flood on one machine costs no more than the cap.
 */
export const openAlertsByMachines = (db: Db, machineIds: readonly string[]) =>
  db
    .selectFrom(sql<{ machineId: string }>`unnest(${[...machineIds]}::text[])`.as<'m'>(sql`m(machine_id)`))
    .innerJoinLateral(
      (eb) =>
        eb
          .selectFrom('quality.alerts')
          .selectAll()
          .whereRef('quality.alerts.machineId', '=', 'm.machineId')
          .where('acknowledgedAt', 'is', null)
          .orderBy('ts', 'desc')
          .orderBy('id', 'desc')
          .limit(OPEN_ALERTS_PER_MACHINE)
          .as('a'),
      (join) => join.onTrue(),
    )
    .selectAll('a')
    .execute();

/** Only the first acknowledgement counts: a repeated one changes nothing and returns the alert as it is. */
export async function acknowledgeAlert(db: Db, id: string, by: string) {
  const updated = await db
    .updateTable('quality.alerts')
    .set({ acknowledgedAt: sql<Date>`now()`, acknowledgedBy: by })
    .where('id', '=', id)
    .where('acknowledgedAt', 'is', null)
    .returningAll()
    .executeTakeFirst();
  return updated ?? alertById(db, id);
}

/** Raises alerts (the telemetry pipeline's validation stage and the demo seed use this). */
export const insertAlerts = (db: Db, alerts: Insertable<AlertsTable>[]) =>
  alerts.length ? db.insertInto('quality.alerts').values(alerts).execute() : Promise.resolve([]);

export function listDeadLetters(db: Db, f: G.DeadLetterFilter | null | undefined, scope: ScopeFilter, page: PageArgs) {
  let q = db.selectFrom('quality.deadLetters').selectAll();
  if (f?.reason?.length) q = q.where('reason', 'in', f.reason);
  if (f?.source?.length)
    q = q.where(
      'source',
      'in',
      f.source.map((s) => SOURCE_CODES[s]),
    );
  if (f?.machineId) q = q.where('machineId', '=', f.machineId);
  if (f?.from) q = q.where('receivedAt', '>=', new Date(f.from));
  if (f?.to) q = q.where('receivedAt', '<', new Date(f.to));
  // A scoped token sees only dead letters it can place on one of its machines.
  if (scope.machineIds) q = q.where('machineId', 'in', inList(scope.machineIds));
  return pageOf(q, page, { sortCol: 'receivedAt', idCol: 'id', desc: true });
}

export function listLossEvents(db: Db, a: { from?: Date | string | null; to?: Date | string | null }, page: PageArgs) {
  let q = db.selectFrom('quality.lossEvents').selectAll();
  if (a.from) q = q.where('at', '>=', new Date(a.from));
  if (a.to) q = q.where('at', '<', new Date(a.to));
  return pageOf(q, page, { sortCol: 'at', idCol: 'id', desc: true });
}
