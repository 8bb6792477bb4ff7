import { notFound } from '../../../lib/errors.ts';
import { guard } from '../../../lib/subgraph/guard.ts';
import { requireInScope, requireVisible } from '../../../lib/subgraph/scope-checks.ts';
import type { Context } from '../context.ts';
import type { Resolvers } from '../__generated__/types.ts';
import { listSyncRuns } from './sync-runs.repo.ts';
import { listLabour, listMaterials } from './master-data.repo.ts';
import { listConsumption } from './consumption.repo.ts';
import { listRecipeDownloads } from './recipes.repo.ts';
import { listVariance } from './variance.repo.ts';
import { listOutbound, outboundById } from './outbox.repo.ts';
import { reportMaterialConsumption } from './goods-issue.ts';
import type { VarianceRow } from './tables.ts';

const actor = (ctx: Context) => ({ sub: ctx.viewer.sub, requestId: ctx.requestId });
const svc = (ctx: Context) => ctx.services.integrations;
const num = (v: string | null) => (v === null ? null : Number(v));
const lineOf = <T extends { lineId: string }>(r: T) => ({ lineId: r.lineId });
const workOrder = async (ctx: Context, id: string) =>
  requireVisible(ctx, 'WorkOrder', id, await ctx.loaders.workOrder.load(id), lineOf);

/**
 * MES/ERP: syncs, recipe downloads, order status reports and what they brought. Thin: arguments in, service or repo
 * out.
 */
export const integrationResolvers: Resolvers<Context> = {
  Query: {
    syncRuns: async (_, a, ctx) => listSyncRuns(ctx.db, a.filter ?? {}, await ctx.scope.filter(), a),
    recipeDownloads: async (_, a, ctx) => listRecipeDownloads(ctx.db, a, await ctx.scope.filter(), a),
    materials: (_, a, ctx) => listMaterials(ctx.db, a, a),
    labourCosts: async (_, a, ctx) => listLabour(ctx.db, a.filter ?? {}, await ctx.scope.filter(), a),
    materialConsumption: async (_, a, ctx) => listConsumption(ctx.db, a, await ctx.scope.filter(), a),
    productionVariance: async (_, a, ctx) =>
      listVariance(
        ctx.db,
        { ...a.filter, from: a.filter?.from ?? null, to: a.filter?.to ?? null },
        await ctx.scope.filter(),
        a,
      ),
    outboundUpdates: async (_, a, ctx) =>
      listOutbound(ctx.db, { state: a.state, workOrderId: a.workOrderId }, await ctx.scope.filter(), a),
  },
  Mutation: {
    syncSchedules: guard({ role: 'engineer', audit: true, target: (a) => a.lineId }, async (a, ctx) => {
      await requireInScope(ctx, { lineId: a.lineId });
      return (await svc(ctx).syncSchedules({
        lineId: a.lineId,
        from: a.from,
        to: a.to,
        system: a.system,
        trigger: 'MANUAL',
        actor: actor(ctx),
      }))!;
    }),
    downloadRecipe: guard({ role: 'engineer', audit: true, target: (a) => a.mesRecipeId }, async (a, ctx) => {
      if (a.lineId) await requireInScope(ctx, { lineId: a.lineId });
      return svc(ctx).downloadRecipe({ mesRecipeId: a.mesRecipeId, lineId: a.lineId, actor: actor(ctx) });
    }),
    syncMaterials: guard({ role: 'engineer', audit: true }, (_a, ctx) =>
      svc(ctx).syncMaterials({ trigger: 'MANUAL', actor: actor(ctx) }),
    ),
    syncLabourCosts: guard({ role: 'engineer', audit: true }, (a, ctx) =>
      svc(ctx).syncLabour({ from: a.from, to: a.to, trigger: 'MANUAL', actor: actor(ctx) }),
    ),
    syncMaterialConsumption: guard({ role: 'engineer', audit: true, target: (a) => a.workOrderId }, async (a, ctx) =>
      svc(ctx).syncConsumption({
        workOrder: await workOrder(ctx, a.workOrderId),
        system: a.system,
        actor: actor(ctx),
      }),
    ),
    updateOrderStatus: guard({ role: 'operator', audit: true, target: (a) => a.workOrderId }, async (a, ctx) => {
      const wo = await workOrder(ctx, a.workOrderId);
      // The loader holds the order as it was; the answer must show it changed.
      ctx.loaders.workOrder.clear(a.workOrderId);
      return svc(ctx).updateOrderStatus({
        workOrder: wo,
        status: a.status,
        actualQuantity: a.actualQuantity,
        actualStart: a.actualStart ?? null,
        actualEnd: a.actualEnd ?? null,
        idempotencyKey: a.idempotencyKey,
        actor: actor(ctx),
      });
    }),
    reportMaterialConsumption: guard({ role: 'operator', audit: true, target: (a) => a.workOrderId }, async (a, ctx) =>
      reportMaterialConsumption(svc(ctx), {
        ...a,
        workOrder: await workOrder(ctx, a.workOrderId),
        actor: actor(ctx),
      }),
    ),
    requeueOutboundUpdate: guard({ role: 'engineer', audit: true, target: (a) => a.id }, async (a, ctx) => {
      const row = await outboundById(ctx.db, a.id);
      await requireVisible(ctx, 'OutboundUpdate', a.id, row, lineOf);
      return svc(ctx).requeueOutbound(a.id);
    }),
  },
  SyncRun: {
    id: (r) => String(r.id),
    line: (r, _, ctx) => (r.lineId ? ctx.loaders.line.load(r.lineId) : null),
    workOrder: (r, _, ctx) => (r.workOrderId ? ctx.loaders.workOrder.load(r.workOrderId) : null),
    from: (r) => r.rangeFrom,
    to: (r) => r.rangeTo,
    errors: (r) => r.errors,
  },
  RecipeDownload: {
    id: (r) => String(r.id),
    recipe: async (r, _, ctx) =>
      (await ctx.loaders.recipe.load(r.recipeId)) ?? Promise.reject(notFound('Recipe', r.recipeId)),
  },
  Material: {
    group: (m) => m.materialGroup,
    grossWeight: (m) => num(m.grossWeight),
    netWeight: (m) => num(m.netWeight),
  },
  LabourCost: {
    id: (r) => String(r.id),
    line: (r, _, ctx) => (r.lineId ? ctx.loaders.line.load(r.lineId) : null),
    hours: (r) => Number(r.hours),
    ratePerHour: (r) => num(r.ratePerHour),
    cost: (r) => num(r.cost),
  },
  MaterialConsumption: {
    id: (r) => String(r.id),
    workOrder: async (r, _, ctx) =>
      (await ctx.loaders.workOrder.load(r.workOrderId)) ?? Promise.reject(notFound('WorkOrder', r.workOrderId)),
    quantity: (r) => Number(r.quantity),
  },
  ProductionVariance: {
    workOrder: async (r, _, ctx) =>
      (await ctx.loaders.workOrder.load(r.workOrderId)) ?? Promise.reject(notFound('WorkOrder', r.workOrderId)),
    quantityVariance: (r) => r.actualQuantity - r.plannedQuantity,
    quantityRatio: (r) => (r.plannedQuantity > 0 ? r.actualQuantity / r.plannedQuantity : null),
    plannedSeconds: (r) => seconds(r.plannedStart, r.plannedEnd)!,
    actualSeconds: (r) => actualSeconds(r),
    timeVariance: (r) => {
      const a = actualSeconds(r);
      return a === null ? null : a - seconds(r.plannedStart, r.plannedEnd)!;
    },
  },
  OutboundUpdate: {
    nextAttemptAt: (r) => (r.state === 'PENDING' ? r.nextAttemptAt : null),
    workOrder: async (r, _, ctx) =>
      (await ctx.loaders.workOrder.load(r.workOrderId)) ?? Promise.reject(notFound('WorkOrder', r.workOrderId)),
  },
};

const seconds = (a: Date | null, b: Date | null) => (a && b ? (b.getTime() - a.getTime()) / 1000 : null);
const actualSeconds = (r: VarianceRow) => (r.actualStart ? seconds(r.actualStart, r.actualEnd ?? new Date()) : null);
