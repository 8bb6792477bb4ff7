import type { Server } from 'node:http';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { scopeKey, type Viewer } from '../auth/viewer.ts';
import { formatError, isClientError } from '../errors.ts';
import { log } from '../log.ts';
import { buildContext, scopedFor, type ContextDeps, type Scoped, type SubgraphContext } from './context.ts';

export interface SubgraphWsOptions<L, S> {
  server: Server;
  schema: GraphQLSchema;
  /** The same as the HTTP path's: one buildContext for both. */
  deps: ContextDeps<L, S>;
  verifyInternal: (token: string) => Promise<Viewer>;
}

/** How long per-scope DataLoaders serve a subscription's events before they are rebuilt (bounded staleness). */
const LOADER_TTL_MS = 1000;

type Extra = {
  [key: string]: unknown;
  viewer?: Viewer;
  /** The viewer of each subscription on this connection, by its id. */
  subscribers?: Map<string, Viewer>;
};

/**
 * graphql-ws on the subgraph's own /graphql path, for the gateway only: the connection must carry the
 * gateway's signed token (`connectionParams.internalToken`), and each subscribe message may carry the
 * subscriber's own (`extensions.internalToken`), verified at subscribe time: that viewer's scope then filters
 * every event. Loaders are shared per scope and rebuilt each second, so a thousand subscriptions on one scope
 * cost one batched sensor lookup per second, not one per event.
 */
export function serveSubscriptions<L, S>(opts: SubgraphWsOptions<L, S>): { close: () => Promise<void> } {
  const { deps } = opts;
  const wss = new WebSocketServer({ server: opts.server, path: '/graphql' });
  const shared = new Map<string, Scoped<L> & { at: number }>();
  const loadersFor = (viewer: Viewer, key: string): Scoped<L> => {
    let e = shared.get(key);
    if (!e || Date.now() - e.at > LOADER_TTL_MS) {
      e = { ...scopedFor(deps, viewer), at: Date.now() };
      if (shared.size > 1000) shared.clear();
      shared.set(key, e);
    }
    return e;
  };

  /** Unexpected errors are logged, then masked, as on the HTTP path; client errors pass with their code. */
  const masked = (errors: readonly GraphQLError[]) =>
    errors.map((e) => {
      if (!isClientError(e.extensions?.code))
        log.error({ err: e.originalError ?? e, service: deps.service, path: e.path }, 'unexpected subscription error');
      return formatError(e.toJSON());
    });

  const disposer = useServer<Record<string, unknown>, Extra>(
    {
      schema: opts.schema,
      onConnect: async (ctx) => {
        const token = ctx.connectionParams?.internalToken;
        if (typeof token !== 'string') return false;
        try {
          ctx.extra.viewer = await opts.verifyInternal(token);
          ctx.extra.subscribers = new Map();
          return true;
        } catch {
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        const token = payload.extensions?.internalToken;
        try {
          ctx.extra.subscribers!.set(
            id,
            typeof token === 'string' ? await opts.verifyInternal(token) : ctx.extra.viewer!,
          );
        } catch (e) {
          return [new GraphQLError((e as Error).message, { extensions: { code: 'UNAUTHENTICATED' } })];
        }
        return undefined;
      },
      context: (ctx, id, payload): SubgraphContext<L, S> => {
        const viewer = ctx.extra.subscribers?.get(id) ?? ctx.extra.viewer!;
        const requestId = typeof payload.extensions?.requestId === 'string' ? payload.extensions.requestId : '';
        // Read on every access: each event's execution picks up the current (at most a second old) loaders.
        const key = scopeKey(viewer);
        const current: Scoped<L> = {
          get scope() {
            return loadersFor(viewer, key).scope;
          },
          get loaders() {
            return loadersFor(viewer, key).loaders;
          },
        };
        return buildContext(deps, viewer, requestId, current);
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: masked(result.errors) } : undefined,
      onError: (_ctx, _id, _payload, errors) => masked(errors),
      onComplete: (ctx, id) => void ctx.extra.subscribers?.delete(id),
    },
    wss,
  );
  wss.on('error', (err) => log.warn({ err: err.message, service: deps.service }, 'subscription server error'));
  return {
    close: async () => {
      await disposer.dispose();
    },
  };
}
