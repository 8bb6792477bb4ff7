import express from 'express';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLError } from 'graphql';
import { expressMiddleware } from '@as-integrations/express5';
import type { SubgraphName } from '../lib/config/hub.ts';
import { formatError, isClientError } from '../lib/errors.ts';
import { listen, mountOps, type Listening } from '../lib/http.ts';
import { log } from '../lib/log.ts';
import { createMetrics, observePlugin } from '../lib/metrics.ts';
import type { Viewer } from '../lib/auth/viewer.ts';
import { createContextFactory, type GatewayContext } from './context.ts';
import { HubDataSource } from './data-source.ts';
import { type UploadLimits, uploadMiddleware } from './uploads.ts';
import { UPLOAD_DEFAULTS } from '../lib/config/hub.ts';
import { createHttpFetcher } from './http-fetcher.ts';
import { BatchingEntitiesDataSource } from './subscriptions/batching.ts';
import { SubscriptionEngine } from './subscriptions/engine.ts';
import { SubscriptionPlanner } from './subscriptions/planner.ts';
import { serveClientSubscriptions } from './subscriptions/ws-server.ts';

export interface GatewayOptions {
  supergraphSdl: string;
  subgraphUrls: Record<SubgraphName, string>;
  verifyUser: (token: string) => Promise<Viewer>;
  internalSecret: string;
  host: string;
  port: number;
  /** How long `_entities` calls of subscription events wait to be batched together (ms). */
  entityBatchWindowMs?: number;
  /** How long entities fetched for subscription events are reused (ms; 0: fetch for every event). */
  entityCacheMs?: number;
  /** How long a lost upstream subscription is retried before its clients get UPSTREAM_UNAVAILABLE (ms). */
  upstreamGiveUpMs?: number;
  /** Unsent bytes on a client socket above which it gets only the newest event per subscription. */
  highWaterBytes?: number;
  /** Every client is pinged once per interval; one that has not answered the previous ping is dropped (ms). */
  pingIntervalMs?: number;
  /**
   * A supergraph source (a poller, a file watcher): called once at start with the function that loads a new
   * supergraph into the running gateway. Without one, `supergraphSdl` serves for the gateway's whole life.
   */
  supergraphUpdates?: (load: (supergraphSdl: string) => void) => void;
  /** File uploads (GraphQL multipart): bytes per file and files per request. */
  uploads?: UploadLimits;
}

/**
 * Errors from a subgraph that could not be reached, or that answered garbage, reach clients as
 * UPSTREAM_UNAVAILABLE / UPSTREAM_BAD_RESPONSE rather than a masked error; every unexpected error is logged
 * with the request id, which the client also gets.
 */
function classifyErrors(errors: readonly GraphQLError[], ctx: GatewayContext): void {
  for (const e of errors) {
    if (isClientError(e.extensions?.code)) continue;
    const cause = String((e.originalError as { message?: string } | undefined)?.message ?? e.message);
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up|fetch failed/i.test(cause)) {
      e.extensions.code = 'UPSTREAM_UNAVAILABLE';
      (e as { message: string }).message = 'A subgraph did not answer; try again shortly';
    }
    e.extensions.requestId = ctx.requestId;
    log.error({ err: e.originalError ?? e, requestId: ctx.requestId, path: e.path }, 'gateway error');
  }
}

/** The one public endpoint: @apollo/gateway over the committed supergraph, auth first, /graphql on `port`. */
export async function startGateway(
  opts: GatewayOptions,
): Promise<Listening & { gateway: ApolloGateway; engine: SubscriptionEngine }> {
  const metrics = createMetrics('gateway');
  const fetcher = createHttpFetcher();
  const dataSource = (name: string, url?: string) =>
    new HubDataSource({
      url: opts.subgraphUrls[name as SubgraphName] ?? url,
      fetcher: fetcher as never,
      // Subgraphs set no cache-control; parsing it on every fetch buys nothing.
      honorSubgraphCacheControlHeader: false,
    });
  let loadSupergraph: (sdl: string) => void = () => {};
  const gateway = new ApolloGateway({
    // A supergraph manager, as Apollo makes of a bare SDL, but keeping its `update` for `supergraphUpdates`.
    supergraphSdl: {
      initialize: async ({ update }) => {
        loadSupergraph = update;
        return { supergraphSdl: opts.supergraphSdl };
      },
    },
    buildService: ({ name, url }) => dataSource(name, url),
  });
  const server = new ApolloServer<GatewayContext>({
    gateway,
    formatError,
    includeStacktraceInErrorResponses: false,
    // bin/hub.ts stops everything in order on SIGINT/SIGTERM; Apollo's own handler would re-raise the signal mid-way.
    stopOnTerminationSignals: false,
    // Cache-control hints are computed per field by default; the hub sets none and no CDN reads them.
    plugins: [observePlugin(metrics, classifyErrors), ApolloServerPluginCacheControlDisabled()],
  });
  await server.start();

  const context = createContextFactory(opts.verifyUser, opts.internalSecret);
  const app = express();
  app.disable('x-powered-by');
  mountOps(app, metrics.registry, async () => true);
  app.use(
    '/graphql',
    // Multipart (uploads): the CSRF header and the token first, then the files under their limits.
    ...uploadMiddleware(opts.uploads ?? UPLOAD_DEFAULTS, (req) => context(req)),
    express.json({ limit: '2mb' }),
    expressMiddleware(server, { context: ({ req }) => context(req) }),
  );
  const listening = await listen(app, opts.host, opts.port, '/graphql');

  // Subscriptions: graphql-ws on the same path, planned with the same query planner, entities batched.
  const engine = new SubscriptionEngine(new SubscriptionPlanner(opts.supergraphSdl), {
    internalSecret: opts.internalSecret,
    subgraphUrls: opts.subgraphUrls,
    services: Object.fromEntries(
      Object.keys(opts.subgraphUrls).map((n) => [
        n,
        new BatchingEntitiesDataSource(dataSource(n), opts.entityBatchWindowMs ?? 5, opts.entityCacheMs ?? 1000),
      ]),
    ),
    registry: metrics.registry,
    giveUpAfterMs: opts.upstreamGiveUpMs,
  });
  // A new supergraph (a gateway configured to poll one) ends subscriptions with SUBSCRIPTION_SCHEMA_RELOAD.
  let planned = opts.supergraphSdl;
  gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
    if (coreSupergraphSdl === planned) return;
    planned = coreSupergraphSdl;
    engine.reload(new SubscriptionPlanner(coreSupergraphSdl));
  });
  opts.supergraphUpdates?.((sdl) => loadSupergraph(sdl));
  const ws = serveClientSubscriptions({
    server: listening.server,
    path: '/graphql',
    engine,
    apollo: server,
    authenticate: context,
    registry: metrics.registry,
    highWaterBytes: opts.highWaterBytes,
    pingIntervalMs: opts.pingIntervalMs,
  });
  return {
    ...listening,
    gateway,
    engine,
    close: async () => {
      await ws.close();
      await engine.close();
      await listening.close();
      await server.stop();
    },
  };
}
