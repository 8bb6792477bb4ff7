import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { type FakePiWebApi, startPiWebApi } from '../fakes/pi-web-api.ts';
import { series } from '../fakes/pi-web-api-data.ts';
import { historianConfig, MACHINES, mappingIds, PI_ENV, PI_SERVER } from '../helpers/historian-hub.ts';
import { createTestDatabase, startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * The frontfill keeps every mapped tag current from its high watermark: a first round reads the initial lookback,
 * later rounds what the clock adds, and a hub that was down an hour (of its clock) catches up at start, with no
 * gap and nothing twice. The clock is the hub's `now`, moved by the test; the truth is the fake's events.
 */
const T = Date.UTC(2026, 2, 29, 0, 30); // Europe springs forward at 01:00 UTC: the catch-up crosses it
const MIN = 60_000;
const STEP = 30_000;
const LAG = 5_000;
const LOOKBACK = 30 * MIN; // shorter than the hour down: only the high watermark can close that gap
/** Where a tag never fetched starts: the lookback before the first round's end (now − lag). */
const FIRST = T - LAG - LOOKBACK;
const TAGS = 20;
const name = (i: number) => `${PI_SERVER}FF${String(i).padStart(2, '0')}.PV`;
const truth = (i: number) => series(T - 3 * 60 * MIN, 12 * 60, STEP, (k) => i * 10_000 + k);

let pi: FakePiWebApi;
let db: { url: string; drop: () => Promise<void> };
let dir: string;
let clock = T;
let hub: TestHub | undefined;
let engineer: string;
let ids: Map<string, string>;

/** What the hub should hold of tag i once it has read [from, to): the truth's values in that range. */
const expected = (i: number, from: number, to: number) => truth(i).filter((e) => e.ts >= from && e.ts < to);

const stored = async () => {
  const { rows } = await sql<{ tag: string; n: number; first: Date | null; last: Date | null; s: number }>`
    select m.tag, count(r.ts)::int as n, min(r.ts) as first, max(r.ts) as last, coalesce(sum(r.value), 0)::float8 as s
    from historian.tag_mappings m join telemetry.series s on s.tag_mapping_id = m.id
    left join telemetry.readings r on r.series_id = s.id
    where m.historian = 'PI-1' group by m.tag order by m.tag`.execute(hub!.db);
  return rows;
};

/** Waits until every tag holds exactly the truth of [from, to), then checks the values themselves. */
async function holds(from: number, to: number) {
  const want = [...Array(TAGS).keys()].map((i) => expected(i, from, to));
  await until(
    `every tag holds [${new Date(from).toISOString()}, ${new Date(to).toISOString()})`,
    stored,
    (rows) => rows.length === TAGS && rows.every((r, i) => r.n === want[i]!.length),
    30_000,
    200,
  );
  const rows = await stored();
  for (const [i, r] of rows.entries()) {
    expect(r.first?.getTime()).toBe(want[i]![0]!.ts);
    expect(r.last?.getTime()).toBe(want[i]!.at(-1)!.ts);
    expect(r.s).toBeCloseTo(
      want[i]!.reduce((a, e) => a + (e.value as number), 0),
      6,
    );
  }
}

const watermarks = async (tag: string, from: number, to: number) => {
  const q = `query($id: ID!, $f: DateTime, $t: DateTime) { tagMapping(id: $id) { watermarks {
    low high fetched { from to } unfetched(from: $f, to: $t) { from to } } } }`;
  const { body } = await hub!.gql(engineer, q, {
    id: ids.get(tag),
    f: new Date(from).toISOString(),
    t: new Date(to).toISOString(),
  });
  expect(body.errors).toBeUndefined();
  return body.data.tagMapping.watermarks;
};

const start = async (seed: boolean) => {
  hub = await startTestHub({ seed, database: db, config: { dir, env: PI_ENV }, now: () => clock });
  engineer = await hub.token({ role: 'engineer', sub: 'eng-frontfill' });
};

beforeAll(async () => {
  pi = await startPiWebApi();
  for (let i = 0; i < TAGS; i++) pi.addTag(name(i), { units: 'm3/h', events: truth(i) });
  const frontfill =
    `{ enabled: true, intervalSeconds: 1, lagSeconds: ${LAG / 1000}, ` + `initialLookbackMinutes: ${LOOKBACK / MIN} }`;
  dir = historianConfig(
    pi,
    [...Array(TAGS).keys()].map((i) => ({ tag: name(i), machineId: MACHINES[i % MACHINES.length]! })),
    { frontfill },
  );
  db = await createTestDatabase();
  await start(true);
  ids = await mappingIds(hub!, TAGS);
}, 60_000);
afterAll(async () => {
  await hub?.close();
  await db?.drop();
  await pi?.close();
});

describe('the frontfill', () => {
  it('reads the initial lookback of every mapped tag up to now − lag, and keeps its watermarks', async () => {
    await holds(FIRST, T - LAG);
    const w = await watermarks(name(3), T - 2 * LOOKBACK, T);
    expect(w).toEqual({
      low: new Date(FIRST).toISOString(),
      high: new Date(T - LAG).toISOString(),
      fetched: [{ from: new Date(FIRST).toISOString(), to: new Date(T - LAG).toISOString() }],
      unfetched: [
        { from: new Date(T - 2 * LOOKBACK).toISOString(), to: new Date(FIRST).toISOString() },
        { from: new Date(T - LAG).toISOString(), to: new Date(T).toISOString() },
      ],
    });
  }, 40_000);

  it('follows the clock: the next rounds read what it adds, from the high watermark', async () => {
    clock = T + 10 * MIN;
    await holds(FIRST, clock - LAG);
    expect((await watermarks(name(0), FIRST, clock - LAG)).unfetched).toEqual([]);
  }, 40_000);

  it('catches up an hour the hub was down, at its start, with no gap and nothing twice', async () => {
    await hub!.close();
    hub = undefined;
    const downAt = clock;
    clock += 60 * MIN;
    await start(false);
    await holds(FIRST, clock - LAG);
    for (const i of [0, 7, 19]) {
      const w = await watermarks(name(i), FIRST, clock - LAG);
      expect(w.unfetched).toEqual([]);
      expect(w.fetched).toEqual([{ from: new Date(FIRST).toISOString(), to: new Date(clock - LAG).toISOString() }]);
    }
    // The hour it was down, across the DST change, is there value by value.
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from telemetry.readings r join telemetry.series s on s.id = r.series_id
      where s.tag_mapping_id = ${ids.get(name(5))!}::uuid and r.ts >= ${new Date(downAt - LAG)}
        and r.ts < ${new Date(clock - LAG)}`.execute(hub!.db);
    expect(rows[0]!.n).toBe(expected(5, downAt - LAG, clock - LAG).length);
  }, 60_000);
});
