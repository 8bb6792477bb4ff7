import { badInput, fromPgError, notFound } from '../../lib/errors.ts';
import { guard } from '../../lib/subgraph/guard.ts';
import { scalarResolvers } from '../../lib/subgraph/scalars.ts';
import { requireInScope } from '../../lib/subgraph/scope-checks.ts';
import { isUtf8 } from 'node:buffer';
import { emptyConnection } from '../../lib/pagination.ts';
import { sourceName } from '../../lib/telemetry/sources.ts';
import { liveStream, scopedInterest, setOf } from '../../lib/subgraph/live-interest.ts';
import type { LiveEvent } from '../../lib/subgraph/live-feed.ts';
import type { AlertRow } from '../../lib/db/rows.ts';
import type { Context } from './context.ts';
import type * as G from './__generated__/types.ts';
import * as repo from './quality.repo.ts';

const orThrow =
  <T>(what: string, id: string) =>
  (row: T | null | undefined) =>
    row ?? Promise.reject(notFound(what, id));
const pg = (what: string) => (e: unknown) => fromPgError(e, what);
const sensorRef = (r: { sensorId: string | null }) => (r.sensorId ? { id: r.sensorId } : null);

export const resolvers: G.Resolvers<Context> = {
  ...scalarResolvers,
  Query: {
    rangeRules: async (_, a, ctx) => repo.listRangeRules(ctx.db, a.filter, await ctx.scope.filter(), a),
    alerts: async (_, a, ctx) => repo.listAlerts(ctx.db, a.filter, await ctx.scope.filter(), a),
    deadLetters: async (_, a, ctx) => repo.listDeadLetters(ctx.db, a.filter, await ctx.scope.filter(), a),
    // Loss events belong to streams (edge nodes), not lines: scoped tokens get an empty page.
    lossEvents: async (_, a, ctx) => (ctx.scope.unrestricted ? repo.listLossEvents(ctx.db, a, a) : emptyConnection()),
  },
  Subscription: {
    qualityAlerts: {
      subscribe: async (_, { filter }, ctx) => {
        const types = setOf(filter?.type);
        const severities = setOf(filter?.severity);
        const interest = await scopedInterest<'alerts'>(
          ctx,
          filter,
          (e) => (!types || types.has(e.type)) && (!severities || severities.has(e.severity)),
        );
        return liveStream(ctx, 'alerts', interest);
      },
      resolve: (e: LiveEvent<'alerts'>) => fromLive(e),
    },
  },
  Mutation: {
    createRangeRule: guard(
      { role: 'engineer', audit: true, target: (a, r) => r?.id ?? `${a.input.machineId}/${a.input.signalType}` },
      async (a, ctx) => {
        checkBounds(a.input.minValue, a.input.maxValue);
        await requireInScope(ctx, { machineId: a.input.machineId });
        return repo.insertRangeRule(ctx.db, a.input).catch(pg('RangeRule'));
      },
    ),
    updateRangeRule: guard({ role: 'engineer', audit: true, target: (a) => a.id }, async (a, ctx) => {
      const cur = await repo.rangeRuleById(ctx.db, a.id).then(orThrow('RangeRule', a.id));
      await requireInScope(ctx, { machineId: cur.machineId });
      // Omitted bounds keep their stored values, so the pair is checked as it will be after the update.
      checkBounds(a.input.minValue ?? cur.minValue, a.input.maxValue ?? cur.maxValue);
      return repo.updateRangeRule(ctx.db, a.id, a.input).catch(pg('RangeRule')).then(orThrow('RangeRule', a.id));
    }),
    acknowledgeAlert: guard({ role: 'operator', audit: true, target: (a) => a.id }, async (a, ctx) => {
      const cur = await repo.alertById(ctx.db, a.id).then(orThrow('QualityAlert', a.id));
      await requireInScope(ctx, { machineId: cur.machineId });
      return repo.acknowledgeAlert(ctx.db, a.id, ctx.viewer.sub).then(orThrow('QualityAlert', a.id));
    }),
  },
  Machine: {
    __resolveReference: async (ref, ctx) => ((await ctx.scope.allowsMachine(ref.id)) ? { id: ref.id } : null),
    openAlerts: (m, _, ctx) => ctx.loaders.openAlertsByMachine.load(m.id),
    rangeRules: (m, _, ctx) => ctx.loaders.rangeRulesByMachine.load(m.id),
  },
  RangeRule: {
    machine: (r) => ({ id: r.machineId }),
    sensor: sensorRef,
  },
  DeadLetter: {
    id: (d) => String(d.id),
    source: (d) => sourceName(d.source),
    reason: (d) => d.reason as never,
    payloadText: (d) => (d.payload && isUtf8(d.payload) ? d.payload.toString('utf8') : null),
    payloadBase64: (d) => d.payload?.toString('base64') ?? null,
    payloadBytes: (d) => d.payload?.length ?? null,
    sensor: (d) => (d.sensorId ? { id: d.sensorId } : null),
    machine: (d) => (d.machineId ? { id: d.machineId } : null),
  },
  LossEvent: {
    id: (e) => String(e.id),
    source: (e) => sourceName(e.source),
  },
  QualityAlert: {
    id: (a) => String(a.id),
    machine: (a) => ({ id: a.machineId }),
    sensor: sensorRef,
    acknowledged: (a) => a.acknowledgedAt != null,
  },
};

/** A live alert as the QualityAlert resolvers expect a stored row (a new alert is unacknowledged). */
const fromLive = (e: LiveEvent<'alerts'>): AlertRow =>
  ({
    ...e,
    ts: new Date(e.ts),
    createdAt: new Date(e.createdAt),
    acknowledgedAt: null,
    acknowledgedBy: null,
  }) as AlertRow;

function checkBounds(min: number, max: number) {
  if (min > max) throw badInput('minValue must not be greater than maxValue', { argument: 'minValue' });
}
