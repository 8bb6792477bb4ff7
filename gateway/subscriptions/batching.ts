import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { scopeKey } from '../../lib/auth/viewer.ts';
import type { GatewayContext } from '../context.ts';

type Process = GraphQLDataSourceProcessOptions<GatewayContext>;

interface Pending {
  options: Process;
  /** Index of each of this call's representations in the merged list. */
  slots: number[];
  resolve: (r: GatewayGraphQLResponse) => void;
  reject: (e: unknown) => void;
}

interface Batch {
  calls: Pending[];
  representations: unknown[];
  /** The JSON of each representation sent, for the cache. */
  keys: string[];
  index: Map<string, number>;
}

interface Cached {
  entity: unknown;
  at: number;
  refreshing?: boolean;
}

/** Entities kept per cache key; beyond this the cache is cleared (the next events refill it). */
const MAX_CACHED = 50_000;

/**
 * Wraps a subgraph's data source for the subscription path: `_entities` fetches with the same query, the same
 * other variables and the same internal token that arrive within `windowMs` become ONE request, with equal
 * representations sent once; each caller gets back exactly its own entities (and errors), in its own order,
 * as @apollo/gateway's executor requires. Five hundred machines' events in a window cost one POST per subgraph.
 */
export class BatchingEntitiesDataSource implements GraphQLDataSource<GatewayContext> {
  private readonly batches = new Map<string, Batch>();
  private readonly cache = new Map<string, Cached>();

  /**
   * `cacheMs` > 0 keeps each entity an `_entities` call returned (without errors) for that long, per scope and
   * query: a machine's name and its line's current work order are asked for with every event of every
   * group, but change rarely. 0 turns the cache off (every event fetched fresh).
   */
  constructor(
    private readonly inner: GraphQLDataSource<GatewayContext>,
    private readonly windowMs: number,
    private readonly cacheMs = 0,
  ) {}

  process(options: Process): Promise<GatewayGraphQLResponse> {
    const vars = options.request.variables ?? {};
    const reps = vars.representations;
    if (!Array.isArray(reps)) {
      return this.inner.process(options);
    }
    const { representations: _r, ...others } = vars;
    const ctx = options.context as GatewayContext;
    const key = `${scopeKey(ctx.viewer)}\u0000${options.request.query}\u0000${JSON.stringify(others)}`;
    const repKeys = reps.map((r) => JSON.stringify(r));
    if (this.cacheMs > 0) {
      const now = Date.now();
      const hits = repKeys.map((k) => this.cache.get(`${key}\u0000${k}`));
      if (hits.every((h) => h && now - h.at < this.cacheMs)) {
        // Refresh in the background from half the lifetime on: events keep being served from the cache instead of
        // all waiting for the same refetch the moment the entries expire (a latency spike every cacheMs).
        const old = hits.filter((h) => now - h!.at > this.cacheMs / 2 && !h!.refreshing);
        if (old.length) {
          for (const h of old) h!.refreshing = true;
          const stale = reps.map((_, i) => i).filter((i) => old.includes(hits[i]));
          void this.enqueue(
            key,
            options,
            stale.map((i) => reps[i]),
            stale.map((i) => repKeys[i]!),
          ).catch(() => {
            for (const h of old) h!.refreshing = false;
          });
        }
        return Promise.resolve({ data: { _entities: hits.map((h) => structuredClone(h!.entity)) } });
      }
    }
    return this.enqueue(key, options, reps, repKeys);
  }

  /** Adds representations to the open batch for `key` (opening one, flushed after the window). */
  private enqueue(key: string, options: Process, reps: unknown[], repKeys: string[]): Promise<GatewayGraphQLResponse> {
    let batch = this.batches.get(key);
    if (!batch) {
      batch = { calls: [], representations: [], keys: [], index: new Map() };
      this.batches.set(key, batch);
      const b = batch;
      setTimeout(() => this.flush(key, b), this.windowMs);
    }
    const slots = repKeys.map((k, n) => {
      let i = batch.index.get(k);
      if (i === undefined) {
        i = batch.representations.push(reps[n]) - 1;
        batch.keys.push(k);
        batch.index.set(k, i);
      }
      return i;
    });
    return new Promise((resolve, reject) => batch.calls.push({ options, slots, resolve, reject }));
  }

  private async flush(key: string, batch: Batch): Promise<void> {
    this.batches.delete(key);
    const first = batch.calls[0]!.options;
    let res: GatewayGraphQLResponse;
    try {
      res = await this.inner.process({
        ...first,
        request: {
          ...first.request,
          variables: { ...first.request.variables, representations: batch.representations },
        },
      } as Process);
    } catch (e) {
      for (const c of batch.calls) c.reject(e);
      return;
    }
    const entities = (res.data as { _entities?: unknown[] } | null | undefined)?._entities;
    if (this.cacheMs > 0 && Array.isArray(entities)) this.remember(key, batch, entities, res.errors);
    for (const c of batch.calls) {
      const errors = res.errors?.flatMap((e) => {
        const at = e.path?.[0] === '_entities' && typeof e.path[1] === 'number' ? e.path[1] : undefined;
        if (at === undefined) return [e];
        const mine = c.slots.indexOf(at);
        return mine < 0 ? [] : [{ ...e, path: ['_entities', mine, ...e.path!.slice(2)] }];
      });
      c.resolve({
        ...res,
        // Each caller gets its own copies: the executor merges into what it receives.
        data: Array.isArray(entities)
          ? { _entities: c.slots.map((i) => structuredClone(entities[i] ?? null)) }
          : res.data,
        errors: errors?.length ? errors : undefined,
      });
    }
  }

  /** Caches the entities of a response, except those an error points at. */
  private remember(key: string, batch: Batch, entities: unknown[], errors: GatewayGraphQLResponse['errors']): void {
    const bad = new Set(errors?.map((e) => (e.path?.[0] === '_entities' ? e.path[1] : undefined)));
    if (errors?.some((e) => e.path?.[0] !== '_entities')) return; // an error for the whole call: cache nothing
    if (this.cache.size > MAX_CACHED) this.cache.clear();
    const at = Date.now();
    batch.keys.forEach((k, i) => {
      if (!bad.has(i) && entities[i] != null) this.cache.set(`${key}\u0000${k}`, { entity: entities[i], at });
    });
  }
}
