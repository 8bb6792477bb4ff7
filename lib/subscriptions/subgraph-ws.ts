import type { Server } from 'node:http';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { Scope } from '../auth/scope.ts';
import { scopeKey, type Viewer } from '../auth/viewer.ts';
import type { Db } from '../db/index.ts';
import { formatError, isClientError } from '../errors.ts';
import { log } from '../log.ts';
import type { SubgraphContext } from '../subgraph/context.ts';
import type { LiveFeed } from './live-feed.ts';

export interface SubgraphWsOptions<L> {
  server: Server;
  schema: GraphQLSchema;
  service: string;
  db: Db;
  live?: LiveFeed;
  verifyInternal: (token: string) => Promise<Viewer>;
  loaders: (db: Db, scope: Scope) => L;
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
export function serveSubscriptions<L>(opts: SubgraphWsOptions<L>): { close: () => Promise<void> } {
  const wss = new WebSocketServer({ server: opts.server, path: '/graphql' });
  const shared = new Map<string, { scope: Scope; loaders: L; at: number }>();
  const loadersFor = (viewer: Viewer, key: string) => {
    let e = shared.get(key);
    if (!e || Date.now() - e.at > LOADER_TTL_MS) {
      const scope = new Scope(opts.db, viewer);
      e = { scope, loaders: opts.loaders(opts.db, scope), at: Date.now() };
      if (shared.size > 1000) shared.clear();
      shared.set(key, e);
    }
    return e;
  };

  /** Unexpected errors are logged, then masked, as on the HTTP path; client errors pass with their code. */
  const masked = (errors: readonly GraphQLError[]) =>
    errors.map((e) => {
      if (!isClientError(e.extensions?.code))
        log.error({ err: e.originalError ?? e, service: opts.service, path: e.path }, 'unexpected subscription error');
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
      context: (ctx, id, payload): SubgraphContext<L> => {
        const viewer = ctx.extra.subscribers?.get(id) ?? ctx.extra.viewer!;
        const requestId = typeof payload.extensions?.requestId === 'string' ? payload.extensions.requestId : '';
        const base = { db: opts.db, viewer, requestId, service: opts.service, live: opts.live };
        // Getters: each event's execution picks up the current (at most a second old) loaders.
        const key = scopeKey(viewer);
        return Object.defineProperties(base, {
          scope: { get: () => loadersFor(viewer, key).scope, enumerable: true },
          loaders: { get: () => loadersFor(viewer, key).loaders, enumerable: true },
        }) as SubgraphContext<L>;
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: masked(result.errors) } : undefined,
      onError: (_ctx, _id, _payload, errors) => masked(errors),
      onComplete: (ctx, id) => void ctx.extra.subscribers?.delete(id),
    },
    wss,
  );
  wss.on('error', (err) => log.warn({ err: err.message, service: opts.service }, 'subscription server error'));
  return {
    close: async () => {
      await disposer.dispose();
    },
  };
}
