import { fromPgError, notFound } from '../../lib/errors.ts';
import { guard } from '../../lib/subgraph/guard.ts';
import { scalarResolvers } from '../../lib/subgraph/scalars.ts';
import { requireInScope, requireVisible } from '../../lib/subgraph/scope-checks.ts';
import type { Context } from './context.ts';
import type * as G from './__generated__/types.ts';
import * as repo from './historian.repo.ts';
import { checkedMapping, listHistorians, resolveTags } from './tags.ts';

const orThrow =
  <T>(what: string, id: string) =>
  (row: T | null | undefined) =>
    row ?? Promise.reject(notFound(what, id));
const pg = (what: string) => (e: unknown) => fromPgError(e, what);

export const resolvers: G.Resolvers<Context> = {
  ...scalarResolvers,
  Query: {
    tagMappings: async (_, a, ctx) => repo.listTagMappings(ctx.db, a.filter, await ctx.scope.filter(), a),
    tagMapping: async (_, { id }, ctx) =>
      requireVisible(ctx, 'TagMapping', id, await ctx.loaders.tagMapping.load(id), (t) => ({ machineId: t.machineId })),
    backfillJobs: async (_, a, ctx) => repo.listBackfillJobs(ctx.db, a.filter, await ctx.scope.filter(), a),
    historians: guard({ role: 'engineer' }, async (_a, ctx) => listHistorians(ctx)),
    resolveHistorianTags: guard({ role: 'engineer' }, (a, ctx) => resolveTags(ctx, a.historian, a.tags)),
  },
  Mutation: {
    createTagMapping: guard(
      {
        role: 'engineer',
        audit: true,
        target: (a, t) => t?.id ?? `${a.input.historian ?? a.input.historianSystem}:${a.input.tag}`,
      },
      async (a, ctx) => {
        await requireInScope(ctx, { machineId: a.input.machineId });
        const mapping = await checkedMapping(ctx, a.input);
        return repo.insertTagMapping(ctx.db, mapping).catch(pg('TagMapping'));
      },
    ),
    updateTagMapping: guard({ role: 'engineer', audit: true, target: (a) => a.id }, async (a, ctx) => {
      const cur = await repo
        .tagMappingsByIds(ctx.db, [a.id])
        .then(([t]) => t)
        .then(orThrow('TagMapping', a.id));
      await requireInScope(ctx, { machineId: cur.machineId });
      return repo.updateTagMapping(ctx.db, a.id, a.input).catch(pg('TagMapping')).then(orThrow('TagMapping', a.id));
    }),
  },
  Machine: {
    __resolveReference: async (ref, ctx) => ((await ctx.scope.allowsMachine(ref.id)) ? { id: ref.id } : null),
    tagMappings: (m, _, ctx) => ctx.loaders.tagMappingsByMachine.load(m.id),
  },
  TagMapping: {
    __resolveReference: async (ref, ctx) => {
      const t = await ctx.loaders.tagMapping.load(ref.id);
      return t && (await ctx.scope.allowsMachine(t.machineId)) ? t : null;
    },
    machine: (t) => ({ id: t.machineId }),
    offset: (t) => t.valueOffset,
  },
  BackfillJob: {
    tagMapping: (j, _, ctx) => ctx.loaders.tagMapping.load(j.tagMappingId).then(orThrow('TagMapping', j.tagMappingId)),
    // int8 counters arrive as strings; job sizes stay far below 2^53.
    pointsFetched: (j) => Number(j.pointsFetched),
    pointsImported: (j) => Number(j.pointsImported),
  },
};
