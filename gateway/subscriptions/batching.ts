import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
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
  index: Map<string, number>;
}

/**
 * Wraps a subgraph's data source for the subscription path: `_entities` fetches with the same query, the same
 * other variables and the same internal token that arrive within `windowMs` become ONE request, with equal
 * representations sent once; each caller gets back exactly its own entities (and errors), in its own order,
 * as @apollo/gateway's executor requires. Five hundred machines' events in a window cost one POST per subgraph.
 */
export class BatchingEntitiesDataSource implements GraphQLDataSource<GatewayContext> {
  private readonly batches = new Map<string, Batch>();
  requests = 0;

  constructor(
    private readonly inner: GraphQLDataSource<GatewayContext>,
    private readonly windowMs: number,
  ) {}

  process(options: Process): Promise<GatewayGraphQLResponse> {
    const vars = options.request.variables ?? {};
    const reps = vars.representations;
    if (!Array.isArray(reps)) {
      this.requests++;
      return this.inner.process(options);
    }
    const { representations: _r, ...others } = vars;
    const ctx = options.context as GatewayContext;
    const key = `${ctx.internalToken}\u0000${options.request.query}\u0000${JSON.stringify(others)}`;
    let batch = this.batches.get(key);
    if (!batch) {
      batch = { calls: [], representations: [], index: new Map() };
      this.batches.set(key, batch);
      const b = batch;
      setTimeout(() => this.flush(key, b), this.windowMs);
    }
    const slots = reps.map((r) => {
      const k = JSON.stringify(r);
      let i = batch.index.get(k);
      if (i === undefined) {
        i = batch.representations.push(r) - 1;
        batch.index.set(k, i);
      }
      return i;
    });
    return new Promise((resolve, reject) => batch.calls.push({ options, slots, resolve, reject }));
  }

  private async flush(key: string, batch: Batch): Promise<void> {
    this.batches.delete(key);
    const first = batch.calls[0]!.options;
    this.requests++;
    let res: GatewayGraphQLResponse;
    try {
      res = await this.inner.process({
        ...first,
        request: { ...first.request, variables: { ...first.request.variables, representations: batch.representations } },
      } as Process);
    } catch (e) {
      for (const c of batch.calls) c.reject(e);
      return;
    }
    const entities = (res.data as { _entities?: unknown[] } | null | undefined)?._entities;
    for (const c of batch.calls) {
      const errors = res.errors?.flatMap((e) => {
        const at = e.path?.[0] === '_entities' && typeof e.path[1] === 'number' ? e.path[1] : undefined;
        if (at === undefined) return [e];
        const mine = c.slots.indexOf(at);
        return mine < 0 ? [] : [{ ...e, path: ['_entities', mine, ...e.path!.slice(2)] }];
      });
      c.resolve({
        ...res,
        data: Array.isArray(entities) ? { _entities: c.slots.map((i) => entities[i] ?? null) } : res.data,
        errors: errors?.length ? errors : undefined,
      });
    }
  }
}
