import express from 'express';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { sql } from 'kysely';
import type { DocumentNode } from 'graphql';
import { createInternalTokenVerifier } from '../auth/tokens.ts';
import { Scope } from '../auth/scope.ts';
import type { Db } from '../db/index.ts';
import { formatError, HubError, isClientError } from '../errors.ts';
import { mountOps } from '../http.ts';
import { log } from '../log.ts';
import { createMetrics, observePlugin } from '../metrics.ts';
import type { SubgraphContext } from './context.ts';
import { LiveFeed } from '../subscriptions/live-feed.ts';
import { LIVE_PREFIX } from '../telemetry/live.ts';

export const INTERNAL_HEADER = 'x-hub-internal';

export interface SubgraphOptions<L> {
  name: string;
  typeDefs: DocumentNode;
  resolvers: object;
  db: Db;
  internalSecret: string;
  /** Per-request DataLoaders. */
  loaders: (db: Db, scope: Scope) => L;
  live?: LiveOptions;
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
export async function createSubgraphApp<L>(opts: SubgraphOptions<L>) {
  const metrics = createMetrics(opts.name);
  const verifyInternal = createInternalTokenVerifier(opts.internalSecret);
  const schema = buildSubgraphSchema({ typeDefs: opts.typeDefs, resolvers: opts.resolvers as never });
  const live =
    schema.getSubscriptionType() && opts.live?.mqttUrl
      ? new LiveFeed(opts.live.mqttUrl, opts.live.topicPrefix ?? LIVE_PREFIX, metrics.registry)
      : undefined;
  const server = new ApolloServer<SubgraphContext<L>>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    // bin/hub.ts stops everything in order on SIGINT/SIGTERM; Apollo's own handler would re-raise the signal mid-way.
    stopOnTerminationSignals: false,
    // Inline traces (Apollo Studio) and cache-control hints are unused here and cost time on every fetch.
    plugins: [
      observePlugin<SubgraphContext<L>>(metrics, (errors, ctx) => {
        for (const e of errors) {
          if (isClientError(e.extensions?.code)) continue;
          log.error(
            { err: e.originalError ?? e, requestId: ctx.requestId, service: opts.name, path: e.path },
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
    express.json({ limit: '2mb' }),
    expressMiddleware(server, {
      context: async ({ res }) => {
        const { viewer, requestId } = res.locals as { viewer: SubgraphContext['viewer']; requestId: string };
        const scope = new Scope(opts.db, viewer);
        return {
          db: opts.db,
          viewer,
          scope,
          requestId,
          service: opts.name,
          loaders: opts.loaders(opts.db, scope),
          live,
        };
      },
    }),
  );
  return { app, server, metrics, schema, verifyInternal, live };
}
