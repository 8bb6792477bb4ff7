import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import { seedDemo } from '../../app/demo/seed.ts';
import { startAll, type RunningHub } from '../../app/start-all.ts';
import { signUserToken } from '../../lib/auth/tokens.ts';
import type { Role } from '../../lib/auth/viewer.ts';
import { loadErpConfig } from '../../lib/config/erp.ts';
import { loadHistorianConfig } from '../../lib/config/historian.ts';
import { HubConfigSchema } from '../../lib/config/hub.ts';
import { loadMesConfig } from '../../lib/config/mes.ts';
import { settingsOf } from '../../lib/config/settings.ts';
import { openDatabase } from '../../lib/db/open.ts';

export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789';
export const INTERNAL_SECRET = 'test-internal-secret-0123456789abcdef0123';

/** Creates an empty database of its own on the test server and returns its URL and a drop function. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = inject('adminDatabaseUrl');
  const name = `hub_t_${randomBytes(5).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface TestHub extends RunningHub {
  databaseUrl: string;
  token: (viewer: { role: Role; sub?: string; lines?: string[]; sites?: string[] }) => Promise<string>;
  /** POSTs an operation to the gateway; returns the HTTP status and the parsed body. */
  gql: (
    token: string | null,
    query: string,
    variables?: Record<string, unknown>,
  ) => Promise<{ status: number; body: any }>;
  queries: string[];
  close: () => Promise<void>;
}

export interface TestHubOptions {
  /** The demo plant, seeded through the API. */
  seed?: boolean;
  mqtt?: { url: string; liveTopicPrefix: string };
  /**
   * mes.yml, erp.yml and historian.yml read from `dir` as the hub reads them at start, with `env` as the environment
   * their `${VAR}` references see (the process's own environment is never touched).
   */
  config?: { dir: string; env?: Record<string, string> };
  /** The clock of the hub's services (the historian frontfill reads up to its now). */
  now?: () => number;
  /** A database of the caller's (createTestDatabase) instead of a fresh one: a restart finds its data; not dropped. */
  database?: { url: string };
  /** hub.yml's gateway section, beside the test's host and port. */
  gateway?: Record<string, unknown>;
}

/** The whole hub in this process on a fresh database, configured by `opts` (nothing comes from the environment). */
export async function startTestHub(opts: TestHubOptions = {}): Promise<TestHub> {
  const database = opts.database ? { ...opts.database, drop: async () => {} } : await createTestDatabase();
  const hubConfig = HubConfigSchema.parse({
    gateway: { ...opts.gateway, host: '127.0.0.1', port: 0 },
    // The historian's pipeline listens for changes on a connection of its own.
    database: { url: database.url },
    ...(opts.mqtt ? { mqtt: opts.mqtt } : {}),
  });
  const { dir, env = {} } = opts.config ?? {};
  const settings = settingsOf({
    configDir: dir,
    hub: hubConfig,
    mes: dir ? loadMesConfig(dir, env) : undefined,
    erp: dir ? loadErpConfig(dir, env) : undefined,
    historian: dir ? loadHistorianConfig(dir, env) : undefined,
  });
  const queries: string[] = [];
  const db = await openDatabase(database.url, 5, true, (sql) => queries.push(sql));
  const hub = await startAll(
    settings,
    db,
    {
      jwtSecret: JWT_SECRET,
      internalSecret: INTERNAL_SECRET,
      generated: false,
    },
    { now: opts.now },
  );
  const token: TestHub['token'] = (v) => signUserToken(JWT_SECRET, { sub: v.sub ?? `${v.role}-user`, ...v });
  const gql: TestHub['gql'] = async (tok, query, variables = {}) => {
    const res = await fetch(hub.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, body: await res.json() };
  };
  if (opts.seed) await seedDemo(db, hub.url, await token({ role: 'admin', sub: 'demo-seed' }));
  return {
    ...hub,
    databaseUrl: database.url,
    token,
    gql,
    queries,
    close: async () => {
      await hub.stop();
      await db.destroy();
      await database.drop();
    },
  };
}
