import { requireRole } from '../../lib/auth/viewer.ts';
import { fromPgError, notFound } from '../../lib/errors.ts';
import { guard } from '../../lib/subgraph/guard.ts';
import { scalarResolvers } from '../../lib/subgraph/scalars.ts';
import { requireInScope, requireVisible } from '../../lib/subgraph/scope-checks.ts';
import { jobTasks } from './backfill/backfill.repo.ts';
import { etaSeconds, pointsPerSecond, watchJob } from './backfill/progress.ts';
import { unfetched } from './backfill/ranges.ts';
import type { Context } from './context.ts';
import type * as G from './__generated__/types.ts';
import * as repo from './historian.repo.ts';
import { checkedMapping, listHistorians, resolveTags } from './tags.ts';

const orThrow =
  <T>(what: string, id: string) =>
  (row: T | null | undefined) =>
    row ?? Promise.reject(notFound(what, id));
const pg = (what: string) => (e: unknown) => fromPgError(e, what);

/** A job named by id, when the token may see it: a scoped token sees the jobs that fill one of its machines. */
async function visibleJob(ctx: Context, id: string) {
  const job = await ctx.services.backfills.existing(id);
  if (ctx.scope.unrestricted) return job;
  for (const machineId of await repo.jobMachines(ctx.db, id)) if (await ctx.scope.allowsMachine(machineId)) return job;
  return requireVisible(ctx, 'BackfillJob', id, job, () => ({}));
}
/** For steering a job: every machine it fills must be the token's. */
async function ownJob(ctx: Context, id: string) {
  await ctx.services.backfills.existing(id);
  for (const machineId of await repo.jobMachines(ctx.db, id)) await requireInScope(ctx, { machineId });
}
const progressOf = async (ctx: Context, id: string) => {
  const p = await ctx.loaders.jobProgress.load(id);
  return p ?? { fetched: 0, imported: 0, rejected: 0, duplicate: 0, tags: 0, completed: 0, failed: 0, done: 0 };
};
const steer = { role: 'engineer' as const, audit: true, target: (a: { id: string }) => a.id };

export const resolvers: G.Resolvers<Context> = {
  ...scalarResolvers,
  Query: {
    tagMappings: async (_, a, ctx) => repo.listTagMappings(ctx.db, a.filter, await ctx.scope.filter(), a),
    tagMapping: async (_, { id }, ctx) =>
      requireVisible(ctx, 'TagMapping', id, await ctx.loaders.tagMapping.load(id), (t) => ({ machineId: t.machineId })),
    backfillJobs: async (_, a, ctx) => repo.listBackfillJobs(ctx.db, a.filter, await ctx.scope.filter(), a),
    backfillProgress: guard({ role: 'engineer' }, (a, ctx) => visibleJob(ctx, a.jobId)),
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
    startBackfill: guard({ role: 'engineer', audit: true, target: (_a, j) => j?.id }, (a, ctx) =>
      ctx.services.backfills.start(a.input, ctx.viewer.sub, (machineId) => requireInScope(ctx, { machineId })),
    ),
    pauseBackfill: guard(steer, async (a, ctx) => {
      await ownJob(ctx, a.id);
      return ctx.services.backfills.pause(a.id);
    }),
    resumeBackfill: guard(steer, async (a, ctx) => {
      await ownJob(ctx, a.id);
      return ctx.services.backfills.resume(a.id);
    }),
    cancelBackfill: guard(steer, async (a, ctx) => {
      await ownJob(ctx, a.id);
      return ctx.services.backfills.cancel(a.id);
    }),
    retryBackfillTag: guard(
      { role: 'engineer', audit: true, target: (a) => `${a.jobId}/${a.tagMappingId}` },
      async (a, ctx) => {
        await ownJob(ctx, a.jobId);
        return ctx.services.backfills.retryTag(a.jobId, a.tagMappingId);
      },
    ),
  },
  Subscription: {
    backfillProgress: {
      subscribe: async (_, a, ctx) => {
        requireRole(ctx.viewer, 'engineer');
        await visibleJob(ctx, a.jobId);
        return (async function* () {
          for await (const job of watchJob(ctx.db, a.jobId)) {
            // Loaders live a second per scope on this path: each event's counts are read afresh.
            ctx.loaders.jobProgress.clear(a.jobId);
            yield { backfillProgress: job };
          }
        })();
      },
    },
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
    watermarks: (t, _, ctx) => {
      requireRole(ctx.viewer, 'engineer');
      return ctx.loaders.watermarks.load(t.id);
    },
  },
  TagWatermarks: {
    low: (w) => w.ranges[0]?.from ?? null,
    high: (w) => w.ranges.at(-1)?.to ?? null,
    fetched: (w) => w.ranges,
    unfetched: (w, a) => {
      const from = a.from ?? w.ranges[0]?.from;
      const to = a.to ?? w.ranges.at(-1)?.to;
      return from && to ? unfetched(w.ranges, from, to) : [];
    },
  },
  BackfillJob: {
    from: (j) => j.rangeFrom,
    to: (j) => j.rangeTo,
    running: (j) => j.worker !== null && j.leaseUntil !== null && j.leaseUntil.getTime() > Date.now(),
    pointsFetched: async (j, _, ctx) => (await progressOf(ctx, j.id)).fetched,
    pointsImported: async (j, _, ctx) => (await progressOf(ctx, j.id)).imported,
    pointsRejected: async (j, _, ctx) => (await progressOf(ctx, j.id)).rejected,
    pointsDuplicate: async (j, _, ctx) => (await progressOf(ctx, j.id)).duplicate,
    tagCount: async (j, _, ctx) => (await progressOf(ctx, j.id)).tags,
    tagsCompleted: async (j, _, ctx) => (await progressOf(ctx, j.id)).completed,
    tagsFailed: async (j, _, ctx) => (await progressOf(ctx, j.id)).failed,
    progress: async (j, _, ctx) => (j.status === 'COMPLETED' ? 1 : (await progressOf(ctx, j.id)).done),
    pointsPerSecond: (j) => pointsPerSecond(j),
    etaSeconds: async (j, _, ctx) => etaSeconds(j, (await progressOf(ctx, j.id)).done),
    tags: (j, a, ctx) => jobTasks(ctx.db, j.id, a.status ?? undefined, Math.min(Math.max(a.first ?? 100, 1), 1000)),
  },
  BackfillTag: {
    tagMapping: (t, _, ctx) => ctx.loaders.tagMapping.load(t.tagMappingId).then(orThrow('TagMapping', t.tagMappingId)),
    pointsFetched: (t) => Number(t.fetched),
    pointsImported: (t) => Number(t.imported),
    pointsRejected: (t) => Number(t.rejected),
    pointsDuplicate: (t) => Number(t.duplicate),
  },
};
