import { listAudit } from '../../lib/audit.repo.ts';
import { fromPgError, notFound } from '../../lib/errors.ts';
import { guard } from '../../lib/subgraph/guard.ts';
import { scalarResolvers } from '../../lib/subgraph/scalars.ts';
import { requireInScope, requireVisible } from '../../lib/subgraph/scope-checks.ts';
import type { Context } from './context.ts';
import type { Resolvers } from './__generated__/types.ts';
import * as repo from './production.repo.ts';
import { integrationResolvers as mesErp } from './integration/resolvers.ts';

const orThrow =
  <T>(what: string, id: string) =>
  (row: T | undefined) =>
    row ?? Promise.reject(notFound(what, id));
const pg = (what: string) => (e: unknown) => fromPgError(e, what);
const lineOf = <T extends { lineId: string | null }>(r: T) => ({ lineId: r.lineId });

export const resolvers: Resolvers<Context> = {
  ...scalarResolvers,
  Query: {
    sites: async (_, a, ctx) => repo.listSites(ctx.db, await ctx.scope.filter(), a),
    site: async (_, { id }, ctx) =>
      requireVisible(ctx, 'Site', id, await ctx.loaders.site.load(id), (r) => ({ siteId: r.id })),
    areas: async (_, a, ctx) => repo.listAreas(ctx.db, a.filter, await ctx.scope.filter(), a),
    lines: async (_, a, ctx) => repo.listLines(ctx.db, a.filter, await ctx.scope.filter(), a),
    line: async (_, { id }, ctx) =>
      requireVisible(ctx, 'Line', id, await ctx.loaders.line.load(id), (r) => ({ lineId: r.id })),
    machines: async (_, a, ctx) => repo.listMachines(ctx.db, a.filter, await ctx.scope.filter(), a),
    machine: async (_, { id }, ctx) => requireVisible(ctx, 'Machine', id, await ctx.loaders.machine.load(id), lineOf),
    products: (_, a, ctx) => repo.listProducts(ctx.db, a.filter, a),
    product: async (_, { id }, ctx) => (await ctx.loaders.product.load(id)) ?? Promise.reject(notFound('Product', id)),
    recipes: async (_, a, ctx) => repo.listRecipes(ctx.db, a.filter, await ctx.scope.filter(), a),
    recipe: async (_, { id }, ctx) =>
      requireVisible(ctx, 'Recipe', id, await ctx.loaders.recipe.load(id), (r) =>
        r.lineId ? { lineId: r.lineId } : { siteId: '*' },
      ),
    workOrders: async (_, a, ctx) => repo.listWorkOrders(ctx.db, a.filter, await ctx.scope.filter(), a),
    workOrder: async (_, { id }, ctx) =>
      requireVisible(ctx, 'WorkOrder', id, await ctx.loaders.workOrder.load(id), lineOf),
    shifts: async (_, a, ctx) => repo.listShifts(ctx.db, a.filter, await ctx.scope.filter(), a),
    auditLog: guard({ role: 'admin' }, (a, ctx) => listAudit(ctx.db, a.filter ?? {}, a)),
    ...mesErp.Query,
  },
  Mutation: {
    createSite: guard({ role: 'admin', audit: true, target: (a) => a.input.id }, (a, ctx) =>
      repo.insertSite(ctx.db, a.input).catch(pg('Site')),
    ),
    updateSite: guard({ role: 'admin', audit: true, target: (a) => a.id }, async (a, ctx) => {
      await requireInScope(ctx, { siteId: a.id });
      return repo.updateSite(ctx.db, a.id, a.input).catch(pg('Site')).then(orThrow('Site', a.id));
    }),
    createArea: guard({ role: 'admin', audit: true, target: (a) => a.input.id }, async (a, ctx) => {
      await requireInScope(ctx, { siteId: a.input.siteId });
      return repo.insertArea(ctx.db, a.input).catch(pg('Area'));
    }),
    createLine: guard({ role: 'admin', audit: true, target: (a) => a.input.id }, async (a, ctx) => {
      await requireInScope(ctx, { siteId: a.input.siteId });
      return repo.insertLine(ctx.db, a.input).catch(pg('Line'));
    }),
    updateLine: guard({ role: 'admin', audit: true, target: (a) => a.id }, async (a, ctx) => {
      await requireInScope(ctx, { lineId: a.id });
      return repo.updateLine(ctx.db, a.id, a.input).catch(pg('Line')).then(orThrow('Line', a.id));
    }),
    createMachine: guard({ role: 'admin', audit: true, target: (a) => a.input.id }, async (a, ctx) => {
      await requireInScope(ctx, { lineId: a.input.lineId });
      return repo.insertMachine(ctx.db, a.input).catch(pg('Machine'));
    }),
    updateMachine: guard({ role: 'admin', audit: true, target: (a) => a.id }, async (a, ctx) => {
      await requireInScope(ctx, { machineId: a.id });
      if (a.input.lineId) await requireInScope(ctx, { lineId: a.input.lineId });
      return repo.updateMachine(ctx.db, a.id, a.input).catch(pg('Machine')).then(orThrow('Machine', a.id));
    }),
    createProduct: guard({ role: 'engineer', audit: true, target: (a) => a.input.id }, (a, ctx) =>
      repo.insertProduct(ctx.db, a.input).catch(pg('Product')),
    ),
    updateProduct: guard({ role: 'engineer', audit: true, target: (a) => a.id }, (a, ctx) =>
      repo.updateProduct(ctx.db, a.id, a.input).catch(pg('Product')).then(orThrow('Product', a.id)),
    ),
    createRecipe: guard({ role: 'engineer', audit: true, target: (a) => a.input.code }, async (a, ctx) => {
      if (a.input.lineId) await requireInScope(ctx, { lineId: a.input.lineId });
      return repo.insertRecipe(ctx.db, a.input).catch(pg('Recipe'));
    }),
    createWorkOrder: guard({ role: 'engineer', audit: true, target: (a) => a.input.number }, async (a, ctx) => {
      await requireInScope(ctx, { lineId: a.input.lineId });
      return repo.insertWorkOrder(ctx.db, a.input).catch(pg('WorkOrder'));
    }),
    updateWorkOrder: guard({ role: 'operator', audit: true, target: (a) => a.id }, async (a, ctx) => {
      await requireVisible(ctx, 'WorkOrder', a.id, await ctx.loaders.workOrder.load(a.id), lineOf);
      return repo.updateWorkOrder(ctx.db, a.id, a.input).catch(pg('WorkOrder')).then(orThrow('WorkOrder', a.id));
    }),
    createShift: guard(
      { role: 'engineer', audit: true, target: (a) => `${a.input.lineId}/${a.input.shiftDate}/${a.input.shiftNumber}` },
      async (a, ctx) => {
        await requireInScope(ctx, { lineId: a.input.lineId });
        return repo.insertShift(ctx.db, a.input).catch(pg('Shift'));
      },
    ),
    updateShift: guard({ role: 'engineer', audit: true, target: (a) => a.id }, async (a, ctx) => {
      const [row] = await repo.shiftsByIds(ctx.db, [a.id]).catch(pg('Shift'));
      await requireVisible(ctx, 'Shift', a.id, row, lineOf);
      return repo.updateShift(ctx.db, a.id, a.input).catch(pg('Shift')).then(orThrow('Shift', a.id));
    }),
    ...mesErp.Mutation,
  },
  Site: {
    __resolveReference: async (ref, ctx) =>
      nullIfHidden(ctx, await ctx.loaders.site.load(ref.id), (r) => ctx.scope.allowsSite(r.id)),
    areas: (s, _, ctx) => ctx.loaders.areasBySite.load(s.id),
    lines: (s, _, ctx) => ctx.loaders.linesBySite.load(s.id),
  },
  Area: {
    site: (a, _, ctx) => ctx.loaders.site.load(a.siteId).then(orThrow('Site', a.siteId)),
    lines: (a, _, ctx) => ctx.loaders.linesByArea.load(a.id),
  },
  Line: {
    __resolveReference: async (ref, ctx) =>
      nullIfHidden(ctx, await ctx.loaders.line.load(ref.id), (r) => ctx.scope.allowsLine(r.id)),
    site: (l, _, ctx) => ctx.loaders.site.load(l.siteId).then(orThrow('Site', l.siteId)),
    area: (l, _, ctx) => (l.areaId ? ctx.loaders.area.load(l.areaId) : null),
    machines: (l, _, ctx) => ctx.loaders.machinesByLine.load(l.id),
    currentWorkOrder: (l, _, ctx) => ctx.loaders.currentWorkOrder.load(l.id),
    currentShifts: (l, _, ctx) => ctx.loaders.currentShifts.load(l.id),
  },
  Machine: {
    __resolveReference: async (ref, ctx) =>
      nullIfHidden(ctx, await ctx.loaders.machine.load(ref.id), (r) => ctx.scope.allowsLine(r.lineId)),
    line: (m, _, ctx) => ctx.loaders.line.load(m.lineId).then(orThrow('Line', m.lineId)),
  },
  Recipe: {
    product: (r, _, ctx) => ctx.loaders.product.load(r.productId).then(orThrow('Product', r.productId)),
    line: (r, _, ctx) => (r.lineId ? ctx.loaders.line.load(r.lineId) : null),
  },
  WorkOrder: {
    __resolveReference: async (ref, ctx) =>
      nullIfHidden(ctx, await ctx.loaders.workOrder.load(ref.id), (r) => ctx.scope.allowsLine(r.lineId)),
    line: (w, _, ctx) => ctx.loaders.line.load(w.lineId).then(orThrow('Line', w.lineId)),
    recipe: (w, _, ctx) => (w.recipeId ? ctx.loaders.recipe.load(w.recipeId) : null),
    product: async (w, _, ctx) => {
      const productId = w.productId ?? (w.recipeId ? (await ctx.loaders.recipe.load(w.recipeId))?.productId : null);
      return productId ? ctx.loaders.product.load(productId) : null;
    },
  },
  Shift: {
    line: (s, _, ctx) => ctx.loaders.line.load(s.lineId).then(orThrow('Line', s.lineId)),
  },
  AuditEntry: {
    id: (e) => String(e.id),
  },
  SyncRun: mesErp.SyncRun,
  RecipeDownload: mesErp.RecipeDownload,
  Material: mesErp.Material,
  LabourCost: mesErp.LabourCost,
  MaterialConsumption: mesErp.MaterialConsumption,
  ProductionVariance: mesErp.ProductionVariance,
  OutboundUpdate: mesErp.OutboundUpdate,
};

/** Entity references from other subgraphs resolve to null when the row is outside the token's scope. */
async function nullIfHidden<R>(_ctx: Context, row: R | null, allowed: (r: R) => Promise<boolean>): Promise<R | null> {
  if (!row) return null;
  return (await allowed(row)) ? row : null;
}
