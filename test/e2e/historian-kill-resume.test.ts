import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../lib/db/index.ts';
import { type FakePiWebApi, startPiWebApi } from '../fakes/pi-web-api.ts';
import { series } from '../fakes/pi-web-api-data.ts';
import {
  historianConfig,
  MACHINES,
  type MappedTag,
  PI_ENV,
  PI_SERVER,
  PROGRESS,
  START,
} from '../helpers/historian-hub.ts';
import {
  type HubProcess,
  jobInProcess,
  startHubProcess,
  token,
  writeProcessConfig,
} from '../helpers/historian-process.ts';
import { createTestDatabase } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * A backfill whose process is SIGKILLed twice (no shutdown hook, no last checkpoint, the lease not let go) and that
 * a fresh process on the same database takes over each time: it must end with exactly the points the PI fake holds,
 * each read once from the checkpoints, none stored or refused twice. The hub runs as `bin/hub.ts all` in a child
 * process; the fake, in this process, answers slowly so the job lasts long enough to be killed twice.
 * Expectations come from the fake's truth and from what the database held when the process died.
 */
const T0 = Date.UTC(2026, 2, 29, 0, 30, 0); // the spring DST change in Europe (01:00 UTC) lies inside the range
const STEP = 60_000;
const N = 60; // events per tag: 7 pages of 9 at maxCount 10
const TAGS = 200; // two batch calls of 100 tags a page
const FROM = new Date(T0).toISOString();
const TO = new Date(T0 + N * STEP).toISOString();
const name = (i: number) => `${PI_SERVER}KILL${String(i).padStart(3, '0')}.PV`;
/** One text value in every page of 9 (k ≡ 4 mod 9): a page read twice would show as a second dead letter. */
const event = (i: number) => (k: number) => (k % 9 === 4 ? 'CALIBRATING' : i + k / 100);

let pi: FakePiWebApi;
let db: Db;
let drop: () => Promise<void>;
let databaseUrl: string;
let dir: string;
let engineer: string;
let hub: HubProcess | undefined;
let jobId: string;
const running: HubProcess[] = [];
/** Readings stored outside their tag's watermark when a process died: what the next run reads a second time. */
const notCheckpointed = new Set<string>();

beforeAll(async () => {
  pi = await startPiWebApi();
  const mapped: MappedTag[] = [];
  for (let i = 0; i < TAGS; i++) {
    pi.addTag(name(i), { units: 'm3/h', events: series(T0, N, STEP, event(i)) });
    mapped.push({ tag: name(i), machineId: MACHINES[i % MACHINES.length]! });
  }
  dir = historianConfig(pi, mapped, { maxCount: 10, leaseSeconds: 2 });
  // Checkpoints a second apart (pages come every ~300 ms): a kill right after a commit lands before its checkpoint.
  const file = join(dir, 'historian.yml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('checkpointMs: 100', 'checkpointMs: 1000'));
  writeProcessConfig(dir);
  const database = await createTestDatabase();
  drop = database.drop;
  databaseUrl = database.url;
  db = createDb(database.url, 3);
  engineer = await token('engineer', 'eng-kim');
  hub = await start();
  // historian.yml's mappings are made once the demo seed has made their machines.
  const mappings = () => db.selectFrom('historian.tagMappings').select('id').where('historian', '=', 'PI-1').execute();
  await until('historian.yml mappings made', mappings, (r) => r.length === TAGS, 30_000, 200);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.kill()));
  await db?.destroy();
  await drop?.();
  await pi?.close();
});

async function start() {
  const p = await startHubProcess({ databaseUrl, configDir: dir, env: PI_ENV });
  running.push(p);
  return p;
}

/** Per tag, from the fake: the numbers it holds, their sum, and its text values (refused: a dead letter each). */
function truth() {
  const out = new Map<string, { n: number; sum: number; texts: number }>();
  for (let i = 0; i < TAGS; i++) {
    const events = pi.tags.get(name(i).toUpperCase())!.events;
    const numbers = events.filter((e) => typeof e.value === 'number').map((e) => e.value as number);
    const sum = numbers.reduce((a, b) => a + b, 0);
    out.set(name(i), { n: numbers.length, sum, texts: events.length - numbers.length });
  }
  return out;
}
const total = (k: 'n' | 'texts') => [...truth().values()].reduce((a, t) => a + t[k], 0);

/** The job as its row and its tasks' checkpointed counts say (readable while no process runs). */
async function jobRow() {
  const { rows } = await sql<{
    status: string;
    worker: string | null;
    leaseFuture: boolean;
    fetched: string;
    completed: string;
  }>`
    select j.status, j.worker, j.lease_until > now() as lease_future, sum(t.fetched) as fetched,
      count(*) filter (where t.status = 'COMPLETED') as completed
    from historian.backfill_jobs j join historian.backfill_tasks t on t.job_id = j.id
    where j.id = ${jobId} group by j.id`.execute(db);
  return { ...rows[0]!, fetched: Number(rows[0]!.fetched), completed: Number(rows[0]!.completed) };
}

const storedRows = async () =>
  Number(
    (
      await sql<{ n: string }>`select count(*) as n from telemetry.readings r
        join telemetry.series s on s.id = r.series_id
        join historian.tag_mappings m on m.id = s.tag_mapping_id where m.historian = 'PI-1'`.execute(db)
    ).rows[0]!.n,
  );

/** The job's lease as written by its last checkpoint. */
const leaseUntil = async () => {
  const q = sql<{ at: string }>`select lease_until::text as at from historian.backfill_jobs where id = ${jobId}`;
  return (await q.execute(db)).rows[0]!.at;
};

/**
 * Kills the process between a commit and its checkpoint, once `ready` holds: as soon as rows are stored that no
 * watermark covers yet (checkpoints come a second apart). A hub that checkpoints in the commit never shows that gap:
 * it is killed right after a commit, once three seconds of them have shown none.
 */
async function killAfterACommit(p: HubProcess, ready: (j: Awaited<ReturnType<typeof jobRow>>) => boolean) {
  let last = -1;
  let since: number | undefined;
  const moment = async () => {
    const n = await storedRows();
    const grew = last >= 0 && n > last;
    last = n;
    if (!ready(await jobRow())) return false;
    if ((await notCoveredKeys()).length > 0) return true;
    since ??= Date.now();
    return grew && Date.now() - since > 3000;
  };
  await until('a commit not checkpointed yet', moment, Boolean, 30_000, 10);
  await killed(p);
}

/** Rows stored beyond what the checkpoints recorded as fetched: what the next run reads again. */
async function notCoveredKeys() {
  const { rows } = await sql<{ key: string }>`
    select r.series_id || '@' || extract(epoch from r.ts) as key from telemetry.readings r
    join telemetry.series s on s.id = r.series_id
    join historian.tag_mappings m on m.id = s.tag_mapping_id
    left join historian.tag_watermarks w on w.tag_mapping_id = m.id
    where m.historian = 'PI-1' and not coalesce(w.fetched @> r.ts, false)`.execute(db);
  return rows.map((r) => r.key);
}

/**
 * Kills the process while its commits wait, once `ready` holds: this test's own transaction locks telemetry.readings
 * against writes, the run goes on reading pages (handed to the pipeline, not stored) and checkpointing (the lease is
 * renewed twice after a page came in), then SIGKILL, then the lock goes. A checkpoint that claimed a page before
 * its commit would now lose it.
 */
async function killWhileCommitsWait(p: HubProcess, ready: (j: Awaited<ReturnType<typeof jobRow>>) => boolean) {
  await until('the condition', jobRow, ready, 30_000, 50);
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query('begin');
    await lock.query('lock table telemetry.readings in share mode');
    const rows = await storedRows();
    const seen = pi.trace.length;
    const answered = async () => pi.trace.slice(seen).some((c) => c.path === '/piwebapi/batch' && c.answered === 207);
    await until('a page read under the lock', answered, Boolean, 10_000, 5);
    const leases = new Set([await leaseUntil()]);
    const renewed = async () => leases.add(await leaseUntil()).size >= 3;
    await until('two checkpoints after it', renewed, Boolean, 10_000, 20);
    expect(await storedRows()).toBe(rows); // the lock held: nothing was stored meanwhile
    await p.kill();
  } finally {
    await lock.query('rollback').catch(() => {});
    await lock.end();
  }
  await recordNotCheckpointed();
}

async function killed(p: HubProcess) {
  await p.kill();
  await recordNotCheckpointed();
}

async function recordNotCheckpointed() {
  for (const k of await notCoveredKeys()) notCheckpointed.add(k);
}

describe('a backfill whose process is SIGKILLed twice', () => {
  it('is left RUNNING under the dead worker, partly counted, if killed between commit and checkpoint', async () => {
    pi.setMode('slow', { delayMs: 300 });
    const res = await hub!.gql(engineer, START, {
      i: { historian: 'PI-1', tags: [...Array(TAGS).keys()].map(name), from: FROM, to: TO, priority: 3 },
    });
    expect(res.body.errors).toBeUndefined();
    jobId = res.body.data.startBackfill.id;
    await killAfterACommit(hub!, (j) => j.fetched > 0);
    const dead = await jobRow();
    expect(dead).toMatchObject({ status: 'RUNNING', completed: 0 });
    expect(dead.worker).not.toBeNull(); // still the dead process's
    expect(dead.leaseFuture).toBe(true); // SIGKILL: the lease was not let go, the next process must wait it out
    expect(dead.fetched).toBeGreaterThan(0);
    expect(dead.fetched).toBeLessThan(total('n') + total('texts'));
  }, 45_000);

  it('is taken over by a new process on the database, and killed again while its pages wait to be stored', async () => {
    const before = (await jobRow()).fetched;
    hub = await start();
    const seen = (await hub.gql(engineer, PROGRESS, { id: jobId })).body.data.backfillProgress;
    expect(seen.status).toBe('RUNNING');
    expect(seen.pointsFetched).toBeGreaterThanOrEqual(before);
    expect(seen.pointsFetched).toBeLessThan(total('n') + total('texts'));
    // Another moment: past half the points, with pages read and waiting to be stored.
    const half = (total('n') + total('texts')) / 2;
    await killWhileCommitsWait(hub, (j) => j.fetched >= half);
    const dead = await jobRow();
    expect(dead.status).toBe('RUNNING');
    expect(dead.fetched).toBeGreaterThanOrEqual(half);
    expect(dead.completed).toBeLessThan(TAGS);
  }, 45_000);

  it('ends COMPLETED in a third process with exactly the points the historian holds, each read once', async () => {
    hub = await start();
    const done = await jobInProcess(hub, engineer, jobId, ['COMPLETED', 'FAILED'], 40_000);
    pi.setMode('ok');
    const n = total('n');
    const texts = total('texts');
    // Every event counted once over the three runs: nothing a checkpoint recorded was read again; what was stored
    // after the last checkpoint of a dead run was read again and found stored (a duplicate), nothing else.
    expect(done).toMatchObject({
      status: 'COMPLETED',
      error: null,
      pointsFetched: n + texts,
      pointsRejected: texts,
      pointsDuplicate: notCheckpointed.size,
      tagCount: TAGS,
      tagsCompleted: TAGS,
      tagsFailed: 0,
    });
    expect(done.pointsImported + done.pointsDuplicate).toBe(n);
    // Per tag: as many rows as the fake holds numbers, at distinct timestamps, summing to its values, in range.
    const { rows } = await sql<{ tag: string; n: string; distinct: string; sum: number; lo: Date; hi: Date }>`
      select m.tag, count(*) as n, count(distinct r.ts) as distinct, sum(r.value)::float8 as sum,
        min(r.ts) as lo, max(r.ts) as hi
      from telemetry.readings r join telemetry.series s on s.id = r.series_id
      join historian.tag_mappings m on m.id = s.tag_mapping_id where m.historian = 'PI-1' group by m.tag`.execute(db);
    expect(rows).toHaveLength(TAGS);
    const t = truth();
    for (const r of rows) {
      const want = t.get(r.tag)!;
      expect([r.tag, Number(r.n), Number(r.distinct)]).toEqual([r.tag, want.n, want.n]);
      expect(r.sum).toBeCloseTo(want.sum, 6);
      expect([r.lo.getTime(), r.hi.getTime()]).toEqual([T0, T0 + (N - 1) * STEP]);
    }
    expect(await storedRows()).toBe(n);
  }, 60_000);

  it("leaves every tag's watermark covering the range, in one piece", async () => {
    const { rows } = await sql<{ tag: string; ranges: number; lo: Date; hi: Date }>`
      select m.tag, (select count(*) from unnest(w.fetched))::int as ranges, lower(w.fetched) as lo,
        upper(w.fetched) as hi
      from historian.tag_mappings m join historian.tag_watermarks w on w.tag_mapping_id = m.id
      where m.historian = 'PI-1'`.execute(db);
    expect(rows).toHaveLength(TAGS);
    for (const r of rows)
      expect([r.tag, r.ranges, r.lo.getTime(), r.hi.getTime()]).toEqual([r.tag, 1, T0, T0 + N * STEP]);
    const q = `query($id: ID!) { tagMapping(id: $id) { watermarks { low high fetched { from to } } } }`;
    const id = (
      await db.selectFrom('historian.tagMappings').select('id').where('tag', '=', name(150)).executeTakeFirstOrThrow()
    ).id;
    const { body } = await hub!.gql(engineer, q, { id });
    expect(body.data.tagMapping.watermarks).toEqual({ low: FROM, high: TO, fetched: [{ from: FROM, to: TO }] });
  });

  it('ends once: one audit entry for its start and one for its completion', async () => {
    const rows = await db
      .selectFrom('audit.log')
      .select(['operation', 'outcome'])
      .where('target', '=', jobId)
      .execute();
    expect(rows.map((r) => r.operation).sort()).toEqual(['backfill.completed', 'startBackfill']);
  });

  it('keeps one dead letter per refused value, however often its page was read', async () => {
    const prefix = `${PI_SERVER}KILL`;
    const { rows } = await sql<{ topic: string; n: string }>`select topic, count(*) as n from quality.dead_letters
      where starts_with(topic, ${prefix}) group by topic`.execute(db);
    const t = truth();
    const got = new Map(rows.map((r) => [r.topic, Number(r.n)]));
    const doubled = [...t].filter(([tag, x]) => got.get(tag) !== x.texts).map(([tag]) => tag);
    expect({ doubled: doubled.length, total: [...got.values()].reduce((a, b) => a + b, 0) }).toEqual({
      doubled: 0,
      total: total('texts'),
    });
  });
});
