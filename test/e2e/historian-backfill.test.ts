import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { type FakePiWebApi, startPiWebApi } from '../fakes/pi-web-api.ts';
import { equalRun, type PiEvent, series, systemState } from '../fakes/pi-web-api-data.ts';
import {
  historianConfig,
  jobIn,
  MACHINES,
  type MappedTag,
  mappingIds,
  PI_ENV,
  PI_SERVER,
  PROGRESS,
  START,
} from '../helpers/historian-hub.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { record, wsClient } from '../helpers/ws-client.ts';
import { until } from '../helpers/until.ts';

/**
 * Backfills through the gateway, as a plant engineer runs them: 1,000 PI tags mapped in historian.yml, a job over a
 * range, its progress queried and subscribed to, pause, resume, cancel, a failing tag retried, the tags'
 * watermarks. Every expectation is computed from the truth put into the fake, never from what the hub answers.
 */
const T0 = Date.UTC(2026, 9, 25, 0, 50, 0); // Europe's clocks go back at 01:00 UTC that day: inside the range
const STEP = 60_000;
const N = 20; // values per tag in the main range
const TAGS = 1000;
const name = (i: number) => `${PI_SERVER}FLOW${String(i).padStart(4, '0')}.PV`;
const DIGITAL = `${PI_SERVER}PUMP1.STATE`;
const ODD = `${PI_SERVER}ODD.PV`;
const SAME_TS = `${PI_SERVER}SAMETS.PV`;
const SCALED = name(0);

let hub: TestHub;
let pi: FakePiWebApi;
let engineer: string;
let ids: Map<string, string>;

/** The odd tag's truth: every value kind protocols.md §1 names, on an analog tag. */
const ODD_EVENTS: PiEvent[] = [
  { ts: T0, value: 1.5 },
  { ts: T0 + STEP, value: 2.5, questionable: true },
  { ts: T0 + 2 * STEP, value: 3.5, substituted: true },
  { ts: T0 + 3 * STEP, value: 4.5, annotated: true },
  { ts: T0 + 4 * STEP, value: systemState('I/O Timeout') },
  { ts: T0 + 5 * STEP, value: { Errors: ['Point not found'] } },
  { ts: T0 + 6 * STEP, value: 'BAD VALUE', good: false },
  { ts: T0 + 7 * STEP, value: systemState('Shutdown') },
  { ts: T0 + 8 * STEP, value: 9.5 },
];

beforeAll(async () => {
  pi = await startPiWebApi();
  const mapped: MappedTag[] = [];
  for (let i = 0; i < TAGS; i++) {
    pi.addTag(name(i), { units: 'm3/h', events: series(T0, N, STEP, (k) => i + k / 100) });
    mapped.push({
      tag: name(i),
      machineId: MACHINES[i % MACHINES.length]!,
      ...(i === 0 ? { scale: 2, offset: 10 } : {}),
    });
  }
  pi.addTag(DIGITAL, {
    type: 'Digital',
    digitalSet: { name: 'PumpState', states: ['Stopped', 'Running', 'Fault'] },
    events: [0, 1, 2, 1].map((code, k) => ({
      ts: T0 + k * STEP,
      value: { Name: ['Stopped', 'Running', 'Fault'][code]!, Value: code, IsSystem: false },
    })),
  });
  pi.addTag(ODD, { events: ODD_EVENTS });
  // Three values at one timestamp between two others (PI keeps each event; the hub can store one per timestamp).
  pi.addTag(SAME_TS, {
    events: [...series(T0, 1, STEP), ...equalRun(T0 + STEP, 3, 10), ...series(T0 + 2 * STEP, 1, STEP, () => 20)],
  });
  mapped.push({ tag: DIGITAL, machineId: 'M-101', signalType: 'pump_state', unit: 'state' });
  mapped.push({ tag: ODD, machineId: 'M-102' });
  mapped.push({ tag: SAME_TS, machineId: 'M-103' });
  const dir = historianConfig(pi, mapped, { maxCount: 10 });
  hub = await startTestHub({ seed: true, config: { dir, env: PI_ENV } });
  engineer = await hub.token({ role: 'engineer', sub: 'eng-anna' });
  ids = await mappingIds(hub, TAGS + 3);
}, 120_000);
afterAll(async () => {
  await hub?.close();
  await pi?.close();
});

const iso = (ms: number) => new Date(ms).toISOString();
const seriesOf = async (tag: string) =>
  (
    await hub.db
      .selectFrom('telemetry.series')
      .select('id')
      .where('tagMappingId', '=', ids.get(tag)!)
      .executeTakeFirstOrThrow()
  ).id;
const readingsOf = async (tag: string) =>
  hub.db
    .selectFrom('telemetry.readings')
    .select(['ts', 'value', 'quality', 'workOrderId'])
    .where('seriesId', '=', await seriesOf(tag))
    .orderBy('ts')
    .execute();
const start = async (input: Record<string, unknown>, token = engineer) =>
  hub.gql(token, START, { i: { historian: 'PI-1', ...input } });

describe('a backfill over 1,000 tags', () => {
  let jobId: string;

  it('reads every value the historian holds, in batches of 100 tags a call, exactly once', async () => {
    const batchesBefore = pi.trace.filter((t) => t.path === '/piwebapi/batch').length;
    const tags = [...Array(TAGS).keys()].map(name);
    const res = await start({ tags, from: iso(T0), to: iso(T0 + N * STEP), priority: 5 });
    expect(res.body.errors).toBeUndefined();
    jobId = res.body.data.startBackfill.id;
    expect(res.body.data.startBackfill).toMatchObject({ historian: 'PI-1', from: iso(T0), to: iso(T0 + N * STEP) });
    const job = await jobIn(hub, engineer, jobId, ['COMPLETED', 'FAILED']);
    expect(job).toMatchObject({
      status: 'COMPLETED',
      error: null,
      pointsFetched: TAGS * N,
      pointsImported: TAGS * N,
      pointsRejected: 0,
      pointsDuplicate: 0,
      tagCount: TAGS,
      tagsCompleted: TAGS,
      tagsFailed: 0,
      progress: 1,
      etaSeconds: 0,
    });
    const { rows } = await sql<{ n: string; tags: string }>`
      select count(*) as n, count(distinct s.tag_mapping_id) as tags from telemetry.readings r
      join telemetry.series s on s.id = r.series_id where s.tag_mapping_id is not null`.execute(hub.db);
    expect(rows[0]).toEqual({ n: String(TAGS * N), tags: String(TAGS) });
    // Per tag: its values, in order (tag 7 stands for the rest; the sum covers them all).
    expect((await readingsOf(name(7))).map((r) => [r.ts.getTime(), r.value])).toEqual(
      series(T0, N, STEP, (k) => 7 + k / 100).map((e) => [e.ts, e.value]),
    );
    const { rows: sums } = await sql<{ s: number }>`
      select sum(r.value)::float8 as s from telemetry.readings r join telemetry.series s on s.id = r.series_id
      join historian.tag_mappings m on m.id = s.tag_mapping_id where m.tag <> ${SCALED}`.execute(hub.db);
    let truth = 0;
    for (let i = 1; i < TAGS; i++) for (let k = 0; k < N; k++) truth += i + k / 100;
    expect(sums[0]!.s).toBeCloseTo(truth, 3);
    // 1,000 tags, 20 values at 10 a page (9 kept, the last timestamp read again): 3 pages each, 10 calls of 100
    // tags a page, no per-tag GET.
    const batches = pi.trace.filter((t) => t.path === '/piwebapi/batch').length - batchesBefore;
    expect(batches).toBe(30);
    expect(pi.trace.filter((t) => t.path.endsWith('/recorded'))).toEqual([]);
  }, 90_000);

  it("stores raw × scale + offset, in the mapping's unit, with the work order of the time", async () => {
    const got = await readingsOf(SCALED);
    expect(got.map((r) => r.value)).toEqual(series(T0, N, STEP, (k) => (k / 100) * 2 + 10).map((e) => e.value));
  });

  it("keeps each tag's watermarks: the range fetched, and what around it never was", async () => {
    const q = `query($id: ID!, $from: DateTime, $to: DateTime) { tagMapping(id: $id) { watermarks {
      low high fetched { from to } unfetched(from: $from, to: $to) { from to } } } }`;
    const { body } = await hub.gql(engineer, q, {
      id: ids.get(name(3)),
      from: iso(T0 - 3_600_000),
      to: iso(T0 + 2 * N * STEP),
    });
    expect(body.data.tagMapping.watermarks).toEqual({
      low: iso(T0),
      high: iso(T0 + N * STEP),
      fetched: [{ from: iso(T0), to: iso(T0 + N * STEP) }],
      unfetched: [
        { from: iso(T0 - 3_600_000), to: iso(T0) },
        { from: iso(T0 + N * STEP), to: iso(T0 + 2 * N * STEP) },
      ],
    });
  });

  it('reads only what a tag has not fetched when a second job overlaps the first', async () => {
    pi.addEvents(
      name(5),
      series(T0 - 10 * STEP, 10, STEP, (k) => 500 + k),
    );
    const before = pi.trace.length;
    const res = await start({ tags: [name(5)], from: iso(T0 - 10 * STEP), to: iso(T0 + N * STEP) });
    const job = await jobIn(hub, engineer, res.body.data.startBackfill.id, ['COMPLETED', 'FAILED']);
    expect(job).toMatchObject({ status: 'COMPLETED', pointsFetched: 10, pointsImported: 10, pointsDuplicate: 0 });
    const calls = pi.trace.slice(before).filter((t) => t.path === '/piwebapi/batch');
    expect(calls.length).toBe(2); // 8 + 2 values of the missing ten minutes, nothing of the fetched range
    expect((await readingsOf(name(5))).length).toBe(N + 10);
  });

  it('audits the job: who started it, and how it ended with its counts', async () => {
    const rows = await hub.db.selectFrom('audit.log').selectAll().where('target', '=', jobId).orderBy('id').execute();
    expect(rows.map((r) => [r.operation, r.actor, r.outcome])).toEqual([
      ['startBackfill', 'eng-anna', 'SUCCESS'],
      ['backfill.completed', 'eng-anna', 'SUCCESS'],
    ]);
    expect(rows[1]!.details).toMatchObject({ historian: 'PI-1', fetched: TAGS * N, imported: TAGS * N, tags: TAGS });
  });

  it("counts what it stored in the historian subgraph's /metrics, as ingest counts live readings", async () => {
    const text = await (await fetch(hub.subgraphUrls.historian.replace(/\/graphql$/, '/metrics'))).text();
    const stored = /hub_ingest_readings_total\{[^}]*source="HISTORIAN"[^}]*outcome="stored"[^}]*\} (\d+)/.exec(text);
    expect(Number(stored?.[1])).toBeGreaterThanOrEqual(TAGS * N);
  });
});

describe('values as the historian gives them', () => {
  it('stores digital states as names and codes, never as numbers among the readings', async () => {
    const res = await start({ tags: [DIGITAL], from: iso(T0), to: iso(T0 + N * STEP) });
    await jobIn(hub, engineer, res.body.data.startBackfill.id, ['COMPLETED']);
    expect(await readingsOf(DIGITAL)).toEqual([]);
    const states = await hub.db
      .selectFrom('telemetry.states')
      .select(['ts', 'code', 'name', 'quality'])
      .where('seriesId', '=', await seriesOf(DIGITAL))
      .orderBy('ts')
      .execute();
    expect(states.map((s) => [s.ts.getTime(), s.code, s.name, s.quality])).toEqual([
      [T0, 0, 'Stopped', 100],
      [T0 + STEP, 1, 'Running', 100],
      [T0 + 2 * STEP, 2, 'Fault', 100],
      [T0 + 3 * STEP, 1, 'Running', 100],
    ]);
  });

  it('maps every quality case once, keeps system states as states, and refuses text and errors by name', async () => {
    const res = await start({ tags: [ODD], from: iso(T0), to: iso(T0 + N * STEP) });
    const job = await jobIn(hub, engineer, res.body.data.startBackfill.id, ['COMPLETED']);
    expect(job).toMatchObject({ pointsFetched: 9, pointsImported: 7, pointsRejected: 2, pointsDuplicate: 0 });
    expect((await readingsOf(ODD)).map((r) => [r.ts.getTime(), r.value, r.quality])).toEqual([
      [T0, 1.5, 100],
      [T0 + STEP, 2.5, 50],
      [T0 + 2 * STEP, 3.5, 70],
      [T0 + 3 * STEP, 4.5, 100],
      [T0 + 8 * STEP, 9.5, 100],
    ]);
    const states = await hub.db
      .selectFrom('telemetry.states')
      .select(['ts', 'name', 'code', 'quality'])
      .where('seriesId', '=', await seriesOf(ODD))
      .orderBy('ts')
      .execute();
    expect(states.map((s) => [s.ts.getTime(), s.name, s.code, s.quality])).toEqual([
      [T0 + 4 * STEP, 'I/O Timeout', 246, 0],
      [T0 + 7 * STEP, 'Shutdown', 254, 0],
    ]);
    const dead = await hub.db
      .selectFrom('quality.deadLetters')
      .select(['reason', 'detail', 'topic'])
      .where('topic', '=', ODD)
      .orderBy('id')
      .execute();
    expect(dead).toHaveLength(2);
    expect(dead.every((d) => d.reason === 'INVALID_VALUE')).toBe(true);
    expect(dead[0]!.detail).toMatch(/Point not found/);
    expect(dead[1]!.detail).toMatch(/text value/);
  });
});

describe('values at one timestamp', () => {
  it('stores the first and refuses the others by name (DUPLICATE_TIMESTAMP), so none is lost unseen', async () => {
    const res = await start({ tags: [SAME_TS], from: iso(T0), to: iso(T0 + 10 * STEP) });
    const job = await jobIn(hub, engineer, res.body.data.startBackfill.id, ['COMPLETED', 'FAILED']);
    expect(job).toMatchObject({ status: 'COMPLETED', pointsFetched: 5, pointsImported: 3, pointsRejected: 2 });
    expect((await readingsOf(SAME_TS)).map((r) => [r.ts.getTime(), r.value])).toEqual([
      [T0, 0],
      [T0 + STEP, 10],
      [T0 + 2 * STEP, 20],
    ]);
    const { body } = await hub.gql(
      engineer,
      `{ deadLetters(filter: { reason: [DUPLICATE_TIMESTAMP] }) { nodes { reason topic payloadText } } }`,
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.deadLetters.nodes.map((n: { payloadText: string }) => n.payloadText).sort()).toEqual(['11', '12']);
  });
});

describe('steering a job', () => {
  const SLOW = [...Array(300).keys()].map((i) => name(i));
  const RANGE = { from: iso(T0 + N * STEP), to: iso(T0 + 2 * N * STEP) };
  const add = () => {
    for (const t of SLOW)
      if (!pi.tags.get(t.toUpperCase())!.events.some((e) => e.ts >= T0 + N * STEP))
        pi.addEvents(t, series(T0 + N * STEP, N, STEP));
  };

  it('pauses after the pages it has read, and resumes to exactly the truth', async () => {
    add();
    pi.setMode('slow', { delayMs: 300 });
    const res = await start({ tags: SLOW, ...RANGE });
    const id = res.body.data.startBackfill.id;
    await until(
      'some pages stored',
      async () => (await hub.gql(engineer, PROGRESS, { id })).body.data.backfillProgress,
      (j) => j.pointsFetched > 0,
      30_000,
    );
    const paused = await hub.gql(engineer, 'mutation($id: ID!) { pauseBackfill(id: $id) { status } }', { id });
    expect(paused.body.data.pauseBackfill.status).toBe('PAUSED');
    // Asked at once; in effect once the call in flight is stored (running turns false), and then nothing is read.
    const mid = await until(
      'the run stopped',
      async () => (await hub.gql(engineer, PROGRESS, { id })).body.data.backfillProgress,
      (j) => j.status === 'PAUSED' && !j.running,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 800));
    const still = (await hub.gql(engineer, PROGRESS, { id })).body.data.backfillProgress;
    expect(still.pointsFetched).toBe(mid.pointsFetched); // nothing read while paused
    expect(still.pointsFetched).toBeLessThan(SLOW.length * N);
    pi.setMode('ok');
    const resumed = await hub.gql(engineer, 'mutation($id: ID!) { resumeBackfill(id: $id) { status } }', { id });
    expect(resumed.body.data.resumeBackfill.status).toBe('PENDING');
    const done = await jobIn(hub, engineer, id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETED', pointsImported: SLOW.length * N, tagsCompleted: SLOW.length });
    expect(done.pointsFetched).toBe(done.pointsImported + done.pointsDuplicate);
  }, 90_000);

  it('cancels for good: its tags end CANCELLED, what it stored stays, it cannot be resumed', async () => {
    for (const t of SLOW.slice(0, 150)) pi.addEvents(t, series(T0 - 100 * STEP, 50, STEP));
    pi.setMode('slow', { delayMs: 300 });
    const res = await start({ tags: SLOW.slice(0, 150), from: iso(T0 - 100 * STEP), to: iso(T0 - 50 * STEP) });
    const id = res.body.data.startBackfill.id;
    await jobIn(hub, engineer, id, ['RUNNING']);
    const c = await hub.gql(engineer, 'mutation($id: ID!) { cancelBackfill(id: $id) { status } }', { id });
    expect(c.body.data.cancelBackfill.status).toBe('CANCELLED');
    pi.setMode('ok');
    const q = `query($id: ID!) { backfillProgress(jobId: $id) { status tags(status: [PENDING, RUNNING]) { status } } }`;
    const after = await until(
      'no open tag',
      async () => (await hub.gql(engineer, q, { id })).body.data.backfillProgress,
      (j) => j.tags.length === 0,
    );
    expect(after.status).toBe('CANCELLED');
    const again = await hub.gql(engineer, 'mutation($id: ID!) { resumeBackfill(id: $id) { status } }', { id });
    expect(again.body.errors[0].extensions.code).toBe('CONFLICT');
  }, 60_000);

  it('fails only the tag the historian fails, and reads it again on retryBackfillTag', async () => {
    const bad = name(900);
    const webId = pi.tags.get(bad.toUpperCase())!.webId;
    pi.addEvents(bad, series(T0 - 200 * STEP, 5, STEP));
    pi.addEvents(name(901), series(T0 - 200 * STEP, 5, STEP));
    pi.setMode('itemErrors', { webIds: [webId] });
    const res = await start({ tags: [bad, name(901)], from: iso(T0 - 200 * STEP), to: iso(T0 - 190 * STEP) });
    const id = res.body.data.startBackfill.id;
    const failed = await jobIn(hub, engineer, id, ['FAILED', 'COMPLETED']);
    pi.setMode('ok');
    expect(failed).toMatchObject({ status: 'FAILED', tagsFailed: 1, tagsCompleted: 1, pointsImported: 5 });
    expect(failed.error).toMatch(/1 of the job's tags failed/);
    const q = `query($id: ID!) { backfillProgress(jobId: $id) {
      tags(status: [FAILED]) { tagMapping { tag } error } } }`;
    const tags = (await hub.gql(engineer, q, { id })).body.data.backfillProgress.tags;
    expect(tags).toEqual([{ tagMapping: { tag: bad }, error: expect.any(String) }]);
    const retry = await hub.gql(
      engineer,
      'mutation($j: ID!, $t: ID!) { retryBackfillTag(jobId: $j, tagMappingId: $t) { status } }',
      {
        j: id,
        t: ids.get(bad),
      },
    );
    expect(retry.body.errors).toBeUndefined();
    const done = await jobIn(hub, engineer, id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETED', tagsFailed: 0, tagsCompleted: 2, pointsImported: 10 });
  }, 60_000);
});

describe('steering a job, at awkward moments', () => {
  it('a pause resumed before the run saw it still ends with every value (the next run carries on)', async () => {
    const tags = [...Array(200).keys()].map((i) => name(i + 600));
    for (const t of tags) pi.addEvents(t, series(T0 - 600 * STEP, 30, STEP));
    pi.setMode('slow', { delayMs: 250 });
    const id = (await start({ tags, from: iso(T0 - 600 * STEP), to: iso(T0 - 570 * STEP) })).body.data.startBackfill.id;
    await jobIn(hub, engineer, id, ['RUNNING']);
    const steer = (op: string) => hub.gql(engineer, `mutation($id: ID!) { ${op}(id: $id) { status } }`, { id });
    expect((await steer('pauseBackfill')).body.data.pauseBackfill.status).toBe('PAUSED');
    expect((await steer('resumeBackfill')).body.data.resumeBackfill.status).toBe('PENDING');
    pi.setMode('ok');
    const done = await jobIn(hub, engineer, id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETED', tagsCompleted: 200, pointsImported: 200 * 30 });
  }, 60_000);

  it('resuming a FAILED job reads its failed tags again', async () => {
    const bad = name(950);
    const webId = pi.tags.get(bad.toUpperCase())!.webId;
    pi.addEvents(bad, series(T0 - 700 * STEP, 4, STEP));
    pi.addEvents(name(951), series(T0 - 700 * STEP, 4, STEP));
    pi.setMode('itemErrors', { webIds: [webId] });
    const id = (await start({ tags: [bad, name(951)], from: iso(T0 - 700 * STEP), to: iso(T0 - 690 * STEP) })).body.data
      .startBackfill.id;
    expect(await jobIn(hub, engineer, id, ['FAILED', 'COMPLETED'])).toMatchObject({ status: 'FAILED', tagsFailed: 1 });
    pi.setMode('ok');
    const r = await hub.gql(engineer, 'mutation($id: ID!) { resumeBackfill(id: $id) { status } }', { id });
    expect(r.body.errors).toBeUndefined();
    const done = await jobIn(hub, engineer, id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETED', tagsFailed: 0, tagsCompleted: 2, pointsImported: 8 });
  }, 60_000);

  it("ends a job at now − the frontfill's lag: the newest values are the frontfill's", async () => {
    const to = new Date(Date.now() + 30_000);
    const res = await start({ tags: [name(960)], from: iso(to.getTime() - 3_600_000), to: to.toISOString() });
    expect(res.body.errors).toBeUndefined();
    const end = Date.parse(res.body.data.startBackfill.to);
    expect(end).toBeLessThanOrEqual(Date.now());
    expect(end).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('following a job', () => {
  it('streams its progress over the gateway until it ends, then completes', async () => {
    const tags = [...Array(200).keys()].map((i) => name(i + 400));
    for (const t of tags) pi.addEvents(t, series(T0 - 400 * STEP, 30, STEP));
    pi.setMode('slow', { delayMs: 150 });
    const res = await start({ tags, from: iso(T0 - 400 * STEP), to: iso(T0 - 370 * STEP) });
    const id = res.body.data.startBackfill.id;
    const client = wsClient(hub.url, engineer);
    const r = record(client, `subscription($id: ID!) { backfillProgress(jobId: $id) { status pointsFetched } }`, {
      id,
    });
    try {
      await until('the stream completes', async () => r.completed || !!r.errors, Boolean, 60_000);
      pi.setMode('ok');
      expect(r.errors).toBeUndefined();
      const seen = r.events.map((e) => e.data.backfillProgress);
      expect(seen.at(-1)).toEqual({ status: 'COMPLETED', pointsFetched: 200 * 30 });
      expect(seen.length).toBeGreaterThan(1);
      const fetched = seen.map((s) => s.pointsFetched);
      expect(fetched).toEqual([...fetched].sort((a, b) => a - b)); // it only goes up
    } finally {
      pi.setMode('ok');
      r.dispose();
      await client.dispose();
    }
  }, 90_000);
});

describe('refusals', () => {
  const code = (b: { errors?: { extensions: { code: string } }[] }) => b.errors?.[0]?.extensions.code;

  it('refuses unknown historians, empty ranges, unmapped tags and viewers, each with its code', async () => {
    const range = { from: iso(T0), to: iso(T0 + STEP) };
    expect(code((await hub.gql(engineer, START, { i: { historian: 'NOPE', tags: [name(1)], ...range } })).body)).toBe(
      'NOT_FOUND',
    );
    expect(code((await start({ tags: [name(1)], from: iso(T0), to: iso(T0) })).body)).toBe('BAD_USER_INPUT');
    const unmapped = await start({ tags: [name(1), `${PI_SERVER}NOT.MAPPED`], ...range });
    expect(code(unmapped.body)).toBe('BAD_USER_INPUT');
    expect(unmapped.body.errors[0].extensions.missing).toEqual([`${PI_SERVER}NOT.MAPPED`]);
    await hub.db.updateTable('historian.tagMappings').set({ isActive: false }).where('tag', '=', name(2)).execute();
    const inactive = await start({ tags: [name(2)], ...range });
    await hub.db.updateTable('historian.tagMappings').set({ isActive: true }).where('tag', '=', name(2)).execute();
    expect(code(inactive.body)).toBe('BAD_USER_INPUT');
    expect(inactive.body.errors[0].extensions.mappings).toEqual([ids.get(name(2))]);
    const viewer = await hub.token({ role: 'viewer' });
    expect(code((await start({ tags: [name(1)], ...range }, viewer)).body)).toBe('FORBIDDEN');
    expect(code((await hub.gql(viewer, PROGRESS, { id: '00000000-0000-0000-0000-000000000000' })).body)).toBe(
      'FORBIDDEN',
    );
    expect(code((await hub.gql(engineer, PROGRESS, { id: '00000000-0000-0000-0000-000000000000' })).body)).toBe(
      'NOT_FOUND',
    );
  });
});
