import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeHistorian, type HistorianValue, STRING_SWEEP, startHistorian } from '../fakes/aveva-historian.ts';
import { jobIn, MACHINES, START } from '../helpers/historian-hub.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * Backfills through the gateway from AVEVA Historian REST v2 (the fake of test/fakes/aveva-historian.ts, connector
 * type `aveva-rest`), as from PI in historian-backfill.test.ts: exact counts with the server's paging followed,
 * every quality case of protocols.md §2 on the hub's scale, NULL and text values refused with their reason, a
 * range across a DST change, a 503 burst. Expectations come from the fake's truth and protocols.md, never from the
 * hub's answers.
 */
const HIST = 'AV-1';
const MIN = 60_000;
const FLOWS = 50;
const flow = (i: number) => `Plant.FLOW_${String(i).padStart(2, '0')}`;
const QUAL = 'Plant.QUAL';
const BATCH = 'Plant.BATCH_ID';
const DST = 'Plant.DST_LEVEL';
/** The flow tags' main range: an hour, a value a minute. */
const R1 = { from: Date.parse('2026-06-01T00:00:00Z'), n: 60 };
/** A second range the flow tags hold, read through a 503 burst. */
const R4 = { from: Date.parse('2026-06-03T00:00:00Z'), n: 30 };
const Q0 = Date.parse('2026-06-02T00:00:00Z');
/** Europe's clocks go back at 01:00 UTC on 2026-10-25: local 02:00–03:00 happens twice in these three hours. */
const DST_FROM = Date.parse('2026-10-25T00:00:00Z');
const DST_TO = Date.parse('2026-10-25T03:00:00Z');

// protocols.md §2: OPCQuality 192–219 good (216 a local override), 64–91 uncertain, 0–35 bad; Quality 0 Good, 1 Bad,
// 16 Doubtful, 133 Initial value (good, the first row of a delta query). On the hub's scale (good 100, uncertain 50,
// bad 0) the worse of the two decides.
const GOOD = 100;
const UNCERTAIN = 50;
const BAD = 0;
const OPC_CASES: [number, number][] = [
  [192, GOOD],
  [193, GOOD],
  [202, GOOD],
  [216, GOOD],
  [219, GOOD],
  [64, UNCERTAIN],
  [68, UNCERTAIN],
  [91, UNCERTAIN],
  [0, BAD],
  [4, BAD],
  [24, BAD],
  [35, BAD],
];
const QUALITY_CASES: [number, number][] = [
  [0, GOOD],
  [16, UNCERTAIN],
  [1, BAD],
];
/** The quality tag's rows and what each must be stored with: a number at its quality, or refused (null). */
const QUAL_ROWS: { row: HistorianValue; want: number | null }[] = [
  // An initial value (QualityDetail 252: first value received). The job starts a minute before it: a 133 row at the
  // very start of the query is the value in effect then, which the connector leaves out (aveva.ts).
  { row: { ts: '', value: 40, opcQuality: 192, quality: 133, qualityDetail: 252 }, want: GOOD },
  ...OPC_CASES.map(([opcQuality, want], i) => ({ row: { ts: '', value: i + 0.5, opcQuality, quality: 0 }, want })),
  ...QUALITY_CASES.map(([quality, want], i) => ({ row: { ts: '', value: 20 + i, opcQuality: 192, quality }, want })),
  { row: { ts: '', value: 30, opcQuality: 216, quality: 16 }, want: UNCERTAIN },
  { row: { ts: '', value: 31, opcQuality: 68, quality: 1 }, want: BAD },
  // A NULL value with Quality 1 (Bad NULL inserts use QualityDetail 24): a gap, never a zero.
  { row: { ts: '', value: null, opcQuality: 0, quality: 1, qualityDetail: 24 }, want: null },
  { row: { ts: '', value: 32.25, opcQuality: 192, quality: 0 }, want: GOOD },
].map((r, k) => ({ ...r, row: { ...r.row, ts: new Date(Q0 + k * MIN).toISOString() } }));

let h: FakeHistorian;
let hub: TestHub;
let engineer: string;
let ids: Map<string, string>;

const minutes = (from: number, n: number, f: (k: number) => number): HistorianValue[] =>
  Array.from({ length: n }, (_, k) => ({ ts: new Date(from + k * MIN).toISOString(), value: f(k) }));

/** historian.yml for the fake: AVEVA REST with $top windows of 25 rows, which the fake pages by 7 (next links). */
function avevaConfig(tags: { tag: string; machineId: string }[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-aveva-'));
  const mappings = tags
    .map(
      (t) =>
        `  - { historian: ${HIST}, tag: ${JSON.stringify(t.tag)}, machineId: ${t.machineId}, signalType: flow, ` +
        'unit: "m3/h" }',
    )
    .join('\n');
  writeFileSync(
    join(dir, 'historian.yml'),
    `historians:
  - name: ${HIST}
    type: aveva-rest
    pageSize: 25
    connection:
      baseUrl: ${h.url}
      auth: { type: basic, username: hist-reader, password: "\${AVEVA_PASSWORD}" }
      timeoutSeconds: 5
      retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 }
backfill: { leaseSeconds: 2, checkpointMs: 100, maxTagAttempts: 2 }
frontfill: { enabled: false }
tagMappings:
${mappings}
`,
  );
  return dir;
}

beforeAll(async () => {
  h = await startHistorian({ pageSize: 7 });
  for (let i = 0; i < FLOWS; i++)
    h.addTag(flow(i), {
      type: 'analog',
      unit: 'm3/h',
      values: [...minutes(R1.from, R1.n, (k) => i + k / 100), ...minutes(R4.from, R4.n, (k) => 1000 + i + k)],
    });
  h.addTag(QUAL, { type: 'analog', values: QUAL_ROWS.map((r) => r.row) });
  h.addTag(BATCH, {
    type: 'string',
    values: STRING_SWEEP.map((value, k) => ({ ts: new Date(Q0 + k * MIN).toISOString(), value })),
  });
  h.addTag(DST, { type: 'analog', values: minutes(DST_FROM, (DST_TO - DST_FROM) / MIN, (k) => k) });
  const tags = [...[...Array(FLOWS).keys()].map(flow), QUAL, BATCH, DST];
  const dir = avevaConfig(tags.map((tag, i) => ({ tag, machineId: MACHINES[i % MACHINES.length]! })));
  hub = await startTestHub({ seed: true, config: { dir, env: { AVEVA_PASSWORD: 'hist-pass-1' } } });
  engineer = await hub.token({ role: 'engineer', sub: 'eng-ines' });
  const read = () =>
    hub.db.selectFrom('historian.tagMappings').select(['id', 'tag']).where('historian', '=', HIST).execute();
  const rows = await until('historian.yml mappings made', read, (r) => r.length === tags.length, 30_000, 200);
  ids = new Map(rows.map((r) => [r.tag, r.id]));
}, 60_000);
afterAll(async () => {
  await hub?.close();
  await h?.close();
});

const iso = (ms: number) => new Date(ms).toISOString();
const run = async (input: Record<string, unknown>) => {
  const res = await hub.gql(engineer, START, { i: { historian: HIST, ...input } });
  expect(res.body.errors).toBeUndefined();
  return jobIn(hub, engineer, res.body.data.startBackfill.id, ['COMPLETED', 'FAILED']);
};
const readingsOf = (tag: string, from: number, to: number) =>
  hub.db
    .selectFrom('telemetry.readings as r')
    .innerJoin('telemetry.series as s', 's.id', 'r.seriesId')
    .select(['r.ts', 'r.value', 'r.quality'])
    .where('s.tagMappingId', '=', ids.get(tag)!)
    .where('r.ts', '>=', new Date(from))
    .where('r.ts', '<', new Date(to))
    .orderBy('r.ts')
    .execute();
/** The fake's truth for a tag in [from, to): its rows as stored there. */
const truthOf = (tag: string, from: number, to: number) =>
  h.tags.get(tag)!.values.filter((v) => Date.parse(v.ts) >= from && Date.parse(v.ts) < to);
const deadLettersOf = (tag: string) =>
  hub.db
    .selectFrom('quality.deadLetters')
    .select(['reason', 'detail'])
    .where('topic', '=', tag)
    .orderBy('id')
    .execute();

describe('a backfill from AVEVA Historian REST', () => {
  it("reads 50 tags through the server's pages and $top windows, every row exactly once", async () => {
    const before = h.trace.length;
    const to = R1.from + R1.n * MIN;
    const tags = [...Array(FLOWS).keys()].map(flow);
    const job = await run({ tags, from: iso(R1.from), to: iso(to), priority: 2 });
    const rows = tags.reduce((n, t) => n + truthOf(t, R1.from, to).length, 0);
    expect(job).toMatchObject({
      status: 'COMPLETED',
      error: null,
      pointsFetched: rows,
      pointsImported: rows,
      pointsRejected: 0,
      pointsDuplicate: 0,
      tagCount: FLOWS,
      tagsCompleted: FLOWS,
    });
    const { rows: per } = await sql<{ tag: string; n: string; sum: number }>`
      select m.tag, count(*) as n, sum(r.value)::float8 as sum from telemetry.readings r
      join telemetry.series s on s.id = r.series_id join historian.tag_mappings m on m.id = s.tag_mapping_id
      where m.historian = ${HIST} and r.ts >= ${new Date(R1.from)} and r.ts < ${new Date(to)}
      group by m.tag`.execute(hub.db);
    expect(per).toHaveLength(FLOWS);
    for (const p of per) {
      const truth = truthOf(p.tag, R1.from, to);
      expect([p.tag, Number(p.n)]).toEqual([p.tag, truth.length]);
      expect(p.sum).toBeCloseTo(
        truth.reduce((a, v) => a + (v.value as number), 0),
        6,
      );
    }
    expect((await readingsOf(flow(7), R1.from, to)).map((r) => [r.ts.getTime(), r.value])).toEqual(
      truthOf(flow(7), R1.from, to).map((v) => [Date.parse(v.ts), v.value]),
    );
    // The fake answered pages of 7 rows: its next links were followed, and windows of 25 asked on with $skip.
    const calls = h.trace.slice(before).filter((c) => c.path.endsWith('/ProcessValues'));
    expect(calls.some((c) => c.query.includes('%24skiptoken=') || c.query.includes('$skiptoken='))).toBe(true);
    expect(calls.some((c) => /(%24|\$)skip=25/.test(c.query))).toBe(true);
    expect(calls.every((c) => c.answered === 200)).toBe(true);
  }, 60_000);

  it('stores every quality case with the quality protocols.md gives it, and a NULL as a dead letter', async () => {
    const to = Q0 + QUAL_ROWS.length * MIN;
    const job = await run({ tags: [QUAL], from: iso(Q0 - MIN), to: iso(to) });
    const kept = QUAL_ROWS.filter((r) => r.want !== null);
    expect(job).toMatchObject({
      status: 'COMPLETED',
      pointsFetched: QUAL_ROWS.length,
      pointsImported: kept.length,
      pointsRejected: 1,
    });
    expect((await readingsOf(QUAL, Q0, to)).map((r) => [r.ts.toISOString(), r.value, r.quality])).toEqual(
      kept.map((r) => [r.row.ts, r.row.value, r.want]),
    );
    const dead = await deadLettersOf(QUAL);
    const nullRow = QUAL_ROWS.find((r) => r.want === null)!.row;
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toBe('INVALID_VALUE');
    expect(dead[0]!.detail).toContain(nullRow.ts.slice(0, 19));
  });

  it('refuses the values of a string tag, each with the reason that it is text, and counts them', async () => {
    const to = Q0 + STRING_SWEEP.length * MIN;
    const job = await run({ tags: [BATCH], from: iso(Q0), to: iso(to) });
    expect(job).toMatchObject({
      status: 'COMPLETED',
      pointsFetched: STRING_SWEEP.length,
      pointsImported: 0,
      pointsRejected: STRING_SWEEP.length,
    });
    expect(await readingsOf(BATCH, Q0, to)).toEqual([]);
    const dead = await deadLettersOf(BATCH);
    expect(dead).toHaveLength(STRING_SWEEP.length);
    expect(dead.every((d) => d.reason === 'INVALID_VALUE')).toBe(true);
    // "no value" would say the historian held a gap; it held text (the empty one too), which the hub does not store.
    expect(dead.filter((d) => !/string|text/i.test(d.detail)).map((d) => d.detail)).toEqual([]);
  });

  it('reads a range across the autumn DST change in UTC, losing no hour and doubling none', async () => {
    // This process (the hub's, here) in Berlin for the job: local-time arithmetic anywhere would show as a lost or
    // doubled hour.
    const before = h.trace.length;
    const tz = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    const job = await run({ tags: [DST], from: iso(DST_FROM), to: iso(DST_TO) }).finally(() => {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    });
    const truth = truthOf(DST, DST_FROM, DST_TO);
    expect(job).toMatchObject({ status: 'COMPLETED', pointsFetched: truth.length, pointsImported: truth.length });
    // Asked in UTC (v2's unquoted DateTime literals), from the range's start to its end.
    const literals = h.trace
      .slice(before)
      .filter((c) => c.path.endsWith('/ProcessValues'))
      .flatMap((c) => [...(new URLSearchParams(c.query).get('$filter') ?? '').matchAll(/DateTime \w\w (\S+)/g)])
      .map((m) => m[1]!);
    expect(literals.filter((l) => !l.endsWith('Z'))).toEqual([]);
    expect(new Set(literals.map((l) => Date.parse(l)))).toEqual(new Set([DST_FROM, DST_TO]));
    const got = await readingsOf(DST, DST_FROM, DST_TO);
    expect(got.map((r) => r.ts.getTime())).toEqual(truth.map((v) => Date.parse(v.ts)));
    const { rows } = await sql<{ hour: string; n: string }>`
      select to_char(r.ts at time zone 'UTC', 'HH24') as hour, count(*) as n from telemetry.readings r
      join telemetry.series s on s.id = r.series_id where s.tag_mapping_id = ${ids.get(DST)!}
      group by 1 order by 1`.execute(hub.db);
    expect(rows.map((r) => [r.hour, Number(r.n)])).toEqual([
      ['00', 60],
      ['01', 60],
      ['02', 60],
    ]);
    const q = `query($id: ID!) { tagMapping(id: $id) { watermarks { low high fetched { from to } } } }`;
    const { body } = await hub.gql(engineer, q, { id: ids.get(DST) });
    expect(body.data.tagMapping.watermarks).toEqual({
      low: iso(DST_FROM),
      high: iso(DST_TO),
      fetched: [{ from: iso(DST_FROM), to: iso(DST_TO) }],
    });
  });

  it('retries a burst of 503s and still stores exactly the truth (tags given by mapping id)', async () => {
    const tags = [...Array(10).keys()].map(flow);
    const to = R4.from + R4.n * MIN;
    const before = h.trace.length;
    h.setMode('status', { status: 503, times: 3 });
    const job = await run({ tagMappingIds: tags.map((t) => ids.get(t)), from: iso(R4.from), to: iso(to) });
    h.setMode('ok');
    const rows = tags.reduce((n, t) => n + truthOf(t, R4.from, to).length, 0);
    expect(job).toMatchObject({
      status: 'COMPLETED',
      pointsFetched: rows,
      pointsImported: rows,
      pointsDuplicate: 0,
      tagsFailed: 0,
    });
    const answered = h.trace.slice(before).map((c) => c.answered);
    expect(answered.filter((a) => a === 503)).toHaveLength(3);
    for (const t of tags)
      expect((await readingsOf(t, R4.from, to)).map((r) => [r.ts.getTime(), r.value])).toEqual(
        truthOf(t, R4.from, to).map((v) => [Date.parse(v.ts), v.value]),
      );
  });
});
