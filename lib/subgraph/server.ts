import { graphqlUploadExpress } from 'graphql-upload-ts';
import { multipartErrors } from '../http.ts';
import express from 'express';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { sql } from 'kysely';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import { createInternalTokenVerifier } from '../auth/tokens.ts';
import type { Viewer } from '../auth/viewer.ts';
import type { Db } from '../db/index.ts';
import { formatError, HubError, isClientError } from '../errors.ts';
import { mountOps } from '../http.ts';
import { log } from '../log.ts';
import { createMetrics, type Metrics, observePlugin } from '../metrics.ts';
import { buildContext, type ContextDeps, type SubgraphContext } from './context.ts';
import { LiveFeed } from './live-feed.ts';
import { LIVE_PREFIX } from '../telemetry/live.ts';
import type { SubgraphModule } from './module.ts';

export const INTERNAL_HEADER = 'x-hub-internal';

export interface SubgraphOptions<L, S> {
  module: SubgraphModule<L, S>;
  db: Db;
  internalSecret: string;
  /** What the module's services made (ctx.services). */
  services: S;
  live?: LiveOptions;
  /** The subgraph's metrics, made before its services so they can register theirs in it (default: made here). */
  metrics?: Metrics;
}

/** Where subgraphs that serve subscriptions read the live channel. */
export interface LiveOptions {
  mqttUrl?: string;
  topicPrefix?: string;
}

/**
 * One subgraph as an Express app: POST /graphql (only with the gateway's signed header), plus
 * /healthz, /readyz and /metrics. The same function serves the in-process `npm start` and a separate process.
 */
export async function createSubgraphApp<L, S>(opts: SubgraphOptions<L, S>) {
  const { name, typeDefs } = opts.module;
  const metrics = opts.metrics ?? createMetrics(name);
  const verifyInternal = createInternalTokenVerifier(opts.internalSecret);
  // The generated Resolvers type is checked against the schema by codegen; Apollo's own map type is looser
  // about scalars and __resolveReference, so the two meet here, once.
  const resolvers = opts.module.resolvers as GraphQLResolverMap<unknown>;
  const schema = buildSubgraphSchema({ typeDefs, resolvers });
  const live =
    schema.getSubscriptionType() && opts.live?.mqttUrl
      ? new LiveFeed(opts.live.mqttUrl, opts.live.topicPrefix ?? LIVE_PREFIX, metrics.registry)
      : undefined;
  const deps: ContextDeps<L, S> = {
    db: opts.db,
    service: name,
    loaders: opts.module.loaders,
    services: opts.services,
    live,
  };
  const server = new ApolloServer<SubgraphContext<L, S>>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    // bin/hub.ts stops everything in order on SIGINT/SIGTERM; Apollo's own handler would re-raise the signal mid-way.
    stopOnTerminationSignals: false,
    // Inline traces (Apollo Studio) and cache-control hints are unused here and cost time on every fetch.
    plugins: [
      observePlugin<SubgraphContext<L, S>>(metrics, (errors, ctx) => {
        for (const e of errors) {
          if (isClientError(e.extensions?.code)) continue;
          log.error(
            { err: e.originalError ?? e, requestId: ctx.requestId, service: name, path: e.path },
            'unexpected error',
          );
        }
      }),
      ApolloServerPluginInlineTraceDisabled(),
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
  await server.start();

  const app = express();
  app.disable('x-powered-by');
  mountOps(app, metrics.registry, async () => {
    await sql`select 1`.execute(opts.db);
    return true;
  });
  app.use(
    '/graphql',
    // Refuse anything that did not come through the gateway, before any GraphQL work.
    async (req, res, next) => {
      const token = req.header(INTERNAL_HEADER);
      try {
        if (!token) throw new HubError('UNAUTHENTICATED', 'Subgraphs accept calls only through the gateway');
        res.locals.viewer = await verifyInternal(token);
        res.locals.requestId = req.header('x-request-id') ?? '';
        next();
      } catch (e) {
        const err = e as HubError;
        res.status(401).json({ errors: [{ message: err.message, extensions: { code: 'UNAUTHENTICATED' } }] });
      }
    },
    // Files only ever come from the gateway (the signed header is checked above), which enforces hub.yml's limits:
    // none here beyond them (graphql-upload-ts would cut at its own 5 MB default).
    graphqlUploadExpress({ maxFiles: 100, maxFileSize: Number.POSITIVE_INFINITY }),
    multipartErrors as never,
    express.json({ limit: '2mb' }),
    expressMiddleware(server, {
      context: async ({ res }) => {
        const { viewer, requestId } = res.locals as { viewer: Viewer; requestId: string };
        return buildContext(deps, viewer, requestId);
      },
    }),
  );
  return { app, server, metrics, schema, verifyInternal, live, deps };
}
