import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../lib/db/index.ts';
import { migrateToLatest } from '../../lib/db/migrate.ts';
import { up as forgetRenamedStatus } from '../../lib/db/migrations/0007_status_renamed.ts';
import { createTestDatabase } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * Several processes starting at once (a deployment rolling out every role together) all migrate the same
 * database: kysely's advisory lock lets one apply the migrations while the others wait and then find nothing to do.
 */
const drops: (() => Promise<void>)[] = [];
const pools: Db[] = [];
afterAll(async () => {
  for (const db of pools) await db.destroy();
  for (const drop of drops) await drop();
});

/** The migrations as files on disk: what "each applied once" is counted against, not migrate.ts's own list. */
const MIGRATION_FILES = readdirSync('lib/db/migrations')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

async function freshDatabase(): Promise<string> {
  const d = await createTestDatabase();
  drops.push(d.drop);
  return d.url;
}

const appliedIn = async (url: string) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ name: string }>('select name from public.kysely_migration order by name');
  await c.end();
  return rows.map((r) => r.name);
};

function migrateProcess(url: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/hub.ts', 'migrate'], {
      env: { ...process.env, DATABASE_URL: url, HUB_CONFIG_DIR: '', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('migrations in parallel', () => {
  it('three `hub migrate` processes on one fresh database all succeed; each migration is applied once', async () => {
    expect(MIGRATION_FILES.length).toBeGreaterThan(1);
    const url = await freshDatabase();
    const runs = await Promise.all([1, 2, 3].map(() => migrateProcess(url)));
    for (const r of runs) {
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('migrations are up to date');
    }
    // Each process logs what it applied itself (an info line); together they must name every file exactly once.
    const applied = runs.flatMap((r) =>
      r.out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; applied?: string[] })
        .filter((l) => l.msg === 'migrations applied')
        .flatMap((l) => l.applied ?? []),
    );
    expect(applied.sort()).toEqual(MIGRATION_FILES);
    expect(await appliedIn(url)).toEqual(MIGRATION_FILES);
  }, 60_000);

  it('six pools migrating at the same moment: one applies everything, the rest apply nothing and succeed', async () => {
    const url = await freshDatabase();
    const dbs = Array.from({ length: 6 }, () => createDb(url, 2));
    pools.push(...dbs);
    const results = await Promise.allSettled(dbs.map((db) => migrateToLatest(db)));
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
    expect(failures).toEqual([]);
    const lists = results.map((r) => (r.status === 'fulfilled' ? r.value : []));
    expect(lists.flat().sort()).toEqual(MIGRATION_FILES);
    expect(lists.filter((l) => l.length > 0)).toHaveLength(1);
    expect(await appliedIn(url)).toEqual(MIGRATION_FILES);
  });

  it("processes starting together in a new month all make that month's partition, none tripping up", async () => {
    const url = await freshDatabase();
    const admin = createDb(url, 2);
    pools.push(admin);
    await migrateToLatest(admin);
    // A month ahead whose partition the start makes: gone, as it is on the first start after the month turned.
    const month = (await sql<{ m: string }>`select to_char(now() + interval '1 month', 'YYYY_MM') as m`.execute(admin))
      .rows[0]!.m;
    const partition = `readings_${month}`;
    await sql.raw(`drop table telemetry.${partition}`).execute(admin);

    // Hold the parent table so every starter is caught where it would create the partition (or waits its turn
    // before that): then all of them are past any "does it exist yet" check at once, as on a busy machine.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('lock table telemetry.readings in access exclusive mode');
    const starters = Array.from({ length: 4 }, () => createDb(url, 2));
    pools.push(...starters);
    const runs = Promise.allSettled(starters.map((db) => migrateToLatest(db)));
    // Waiting on a lock, past kysely's migration lock (whose brief queue would look the same). Asked on a connection
    // of its own: inside the holder's transaction, pg_stat_activity would show the same snapshot every time.
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    const waiting = async () =>
      Number(
        (
          await watcher.query(
            `select count(*) as n from pg_stat_activity where datname = current_database()
             and wait_event_type = 'Lock' and query not like '%pg_advisory_lock(%' and pid <> pg_backend_pid()`,
          )
        ).rows[0].n,
      );
    await until('all four starters waiting', waiting, (n) => n === 4);
    await watcher.end();
    await holder.query('commit');
    await holder.end();

    const failures = (await runs).filter((r) => r.status === 'rejected').map((r) => String(r.reason));
    expect(failures).toEqual([]);
    const made = await sql<{ n: number }>`select count(*)::int as n from pg_class c
      join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'telemetry' and c.relname = ${partition}`.execute(
      admin,
    );
    expect(made.rows[0]!.n).toBe(1);
  });

  it('0007 forgets status rows saved under the old names (a raw URL with its credentials, a bare host)', async () => {
    const db = createDb(await freshDatabase(), 2);
    pools.push(db);
    await migrateToLatest(db);
    await sql`insert into iot.http_endpoints (name, url, interval_seconds, worker) values
      ('http://hub:secret@sensor.local/v', 'http://hub:secret@sensor.local/v', 5, 'vm'),
      ('http://***:***@sensor.local/v', 'http://hub:secret@sensor.local/v', 5, 'vm/oee-hub-ingest'),
      ('env', 'http://sensor.local/env', 5, 'vm/oee-hub-ingest')`.execute(db);
    await sql`insert into iot.telemetry_sources (worker, name, kind, state, ready) values
      ('vm', 'mqtt', 'MQTT', 'RUNNING', true), ('vm/oee-hub-ingest', 'mqtt', 'MQTT', 'RUNNING', true)`.execute(db);
    await forgetRenamedStatus(db as unknown as Kysely<unknown>);
    const endpoints = await sql<{ name: string }>`select name from iot.http_endpoints order by name`.execute(db);
    expect(endpoints.rows.map((r) => r.name)).toEqual(['env', 'http://***:***@sensor.local/v']);
    const workers = await sql<{ worker: string }>`select worker from iot.telemetry_sources`.execute(db);
    expect(workers.rows.map((r) => r.worker)).toEqual(['vm/oee-hub-ingest']);
  });
});
