import { SUBGRAPHS, type HubConfig, type SubgraphName } from './config/hub.ts';
import { createDb, type Db } from './db/index.ts';
import { migrateToLatest } from './db/migrate.ts';
import { listen, type Listening } from './http.ts';
import { log } from './log.ts';
import { readSupergraph } from './schema.ts';
import { createSubgraphApp, type LiveOptions } from './subgraph/server.ts';
import { serveSubscriptions } from './subscriptions/subgraph-ws.ts';
import { createUserTokenVerifier } from './auth/tokens.ts';
import type { Secrets } from './secrets.ts';
import { startGateway } from '../gateway/server.ts';
import { production } from '../subgraphs/production/index.ts';
import { historian } from '../subgraphs/historian/index.ts';
import { iot } from '../subgraphs/iot/index.ts';
import { quality } from '../subgraphs/quality/index.ts';
import {
  loadIntegrationConfig,
  startIntegrations,
  type IntegrationSetup,
} from '../subgraphs/production/integration/index.ts';
import type { Integrations } from '../subgraphs/production/integration/service.ts';

const DEFINITIONS = { production, historian, iot, quality } as const;

/** Ports each subgraph takes when it runs as its own process and hub.yml names none. */
export const DEFAULT_SUBGRAPH_PORTS: Record<SubgraphName, number> = {
  production: 4001,
  historian: 4002,
  iot: 4003,
  quality: 4004,
};

export async function openDatabase(
  url: string,
  poolSize: number,
  migrate = true,
  onQuery?: (sql: string) => void,
): Promise<Db> {
  const db = createDb(url, poolSize, onQuery);
  if (migrate) {
    const applied = await migrateToLatest(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
  }
  return db;
}

export async function startSubgraph(
  name: SubgraphName,
  db: Db,
  internalSecret: string,
  host: string,
  port: number,
  live: LiveOptions = {},
  integrations?: Integrations,
): Promise<Listening> {
  const def = DEFINITIONS[name];
  // Production's resolvers reach the MES/ERP service (connectors, job queue) through its loaders factory.
  const loaders =
    name === 'production' ? (d: Db, scope: never) => production.loaders(d, scope, integrations) : def.loaders;
  const {
    app,
    server,
    schema,
    verifyInternal,
    live: feed,
  } = await createSubgraphApp({
    name,
    typeDefs: def.typeDefs,
    resolvers: def.resolvers,
    db,
    internalSecret,
    loaders: loaders as never,
    live,
  });
  const l = await listen(app, host, port, '/graphql');
  const ws = schema.getSubscriptionType()
    ? serveSubscriptions({
        server: l.server,
        schema,
        service: name,
        db,
        live: feed,
        verifyInternal,
        loaders: loaders as never,
      })
    : undefined;
  log.info({ subgraph: name, url: l.url, subscriptions: Boolean(feed) }, 'subgraph listening');
  return {
    ...l,
    close: async () => {
      await ws?.close();
      await feed?.close();
      await l.close();
      await server.stop();
    },
  };
}

export interface RunningHub {
  url: string;
  port: number;
  db: Db;
  subgraphUrls: Record<SubgraphName, string>;
  stop: () => Promise<void>;
}

/**
 * The whole hub in one process: the four subgraphs on local ports and the gateway in front, and the MES/ERP
 * integration (mes.yml / erp.yml from HUB_CONFIG_DIR unless `integration` is given) with its job workers.
 */
export async function startAll(
  cfg: HubConfig,
  db: Db,
  secrets: Secrets,
  integration?: IntegrationSetup,
): Promise<RunningHub> {
  const mesErp = await startIntegrations(
    db,
    integration ?? loadIntegrationConfig(process.env.HUB_CONFIG_DIR || undefined),
  );
  const subgraphs = {} as Record<SubgraphName, Listening>;
  for (const name of SUBGRAPHS) {
    const s = cfg.subgraphs[name];
    subgraphs[name] = await startSubgraph(
      name,
      db,
      secrets.internalSecret,
      s.host,
      s.port,
      { mqttUrl: cfg.mqtt.url, topicPrefix: cfg.mqtt.liveTopicPrefix },
      mesErp.integrations,
    );
  }
  const subgraphUrls = Object.fromEntries(SUBGRAPHS.map((n) => [n, subgraphs[n].url])) as Record<SubgraphName, string>;
  const gw = await startGateway({
    supergraphSdl: readSupergraph(),
    subgraphUrls,
    verifyUser: createUserTokenVerifier({
      secret: secrets.jwtSecret,
      jwksUrl: secrets.jwksUrl,
      issuer: cfg.auth.jwt.issuer,
      audience: cfg.auth.jwt.audience,
    }),
    internalSecret: secrets.internalSecret,
    host: cfg.gateway.host,
    ...cfg.gateway.subscriptions,
    port: cfg.gateway.port,
  });
  log.info({ url: gw.url }, 'gateway listening');
  return {
    url: gw.url,
    port: gw.port,
    db,
    subgraphUrls,
    stop: async () => {
      await gw.close();
      for (const s of Object.values(subgraphs)) await s.close();
      await mesErp.stop();
    },
  };
}
