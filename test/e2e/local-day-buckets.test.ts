import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReadings } from '../../lib/telemetry/readings.repo.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Aggregated series by LOCAL_DAY through the gateway: days of each machine's site, exact against the raw rows,
 * across the autumn change (a 25-hour day in Berlin) and in a zone 45 minutes off the hour (Kathmandu, +05:45:
 * served from the 1-minute rollups). The day bounds below are worked out by hand from the zones' rules.
 */
let hub: TestHub;
let admin: string;
const START = Date.UTC(2026, 9, 23, 0, 0); // 2026-10-23T00:00Z
const STEP = 10 * 60_000;
const COUNT = 4 * 144; // four UTC days, every 10 minutes
const valueAt = (i: number) => (i * 7) % 23;

const seriesOf = async (sensorId: string) =>
  (await hub.db.selectFrom('telemetry.series').select('id').where('sensorId', '=', sensorId).executeTakeFirstOrThrow())
    .id;

/** What the raw rows hold in [from, to): count, sum, min, max, from the values written. */
function truth(from: number, to: number) {
  const vs: number[] = [];
  for (let i = 0; i < COUNT; i++) if (START + i * STEP >= from && START + i * STEP < to) vs.push(valueAt(i));
  return {
    count: vs.length,
    avg: vs.reduce((a, b) => a + b, 0) / vs.length,
    min: Math.min(...vs),
    max: Math.max(...vs),
  };
}

beforeAll(async () => {
  hub = await startTestHub({ seed: true });
  admin = await hub.token({ role: 'admin' });
  const gql = async (q: string, v: Record<string, unknown>) => {
    const { body } = await hub.gql(admin, q, v);
    expect(body.errors).toBeUndefined();
  };
  await gql('mutation($i: CreateSiteInput!) { createSite(input: $i) { id } }', {
    i: { id: 'SITE-KTM', name: 'Kathmandu plant', timezone: 'Asia/Kathmandu' },
  });
  await gql('mutation($i: CreateLineInput!) { createLine(input: $i) { id } }', {
    i: { id: 'LINE-K', siteId: 'SITE-KTM', name: 'Line K' },
  });
  await gql('mutation($i: CreateMachineInput!) { createMachine(input: $i) { id } }', {
    i: { id: 'M-K1', lineId: 'LINE-K', name: 'Press K1' },
  });
  await gql('mutation($i: CreateSensorInput!) { createSensor(input: $i) { id } }', {
    i: { id: 'M-K1-TEMP', name: 'K1 temp', type: 'temperature', unit: 'degC', machineId: 'M-K1', protocol: 'IMPORT' },
  });
  // LINE-1's night shift across the autumn change (22:00 CEST to 06:00 CET: 9 hours), worked by two operators, and
  // the morning shift after it; instants worked out by hand.
  for (const [n, op, startsAt, endsAt, date] of [
    [3, 'OP-N1', '2026-10-24T20:00:00Z', '2026-10-25T05:00:00Z', '2026-10-24'],
    [3, 'OP-N2', '2026-10-24T20:00:00Z', '2026-10-25T05:00:00Z', '2026-10-24'],
    [1, 'OP-M1', '2026-10-25T05:00:00Z', '2026-10-25T13:00:00Z', '2026-10-25'],
  ] as const)
    await gql('mutation($i: CreateShiftInput!) { createShift(input: $i) { id } }', {
      i: { lineId: 'LINE-1', shiftDate: date, shiftNumber: n, operatorId: op, startsAt, endsAt },
    });
  for (const sensor of ['M-101-TEMP', 'M-K1-TEMP']) {
    const seriesId = await seriesOf(sensor);
    const rows = Array.from({ length: COUNT }, (_, i) => ({
      seriesId,
      ts: new Date(START + i * STEP),
      value: valueAt(i),
      quality: 100,
      source: 1,
    }));
    await writeReadings(hub.db, rows);
  }
}, 60_000);
afterAll(async () => hub?.close());

const Q = `query($s: [ID!], $f: DateTime!, $t: DateTime!) {
  aggregatedSeries(filter: { sensorIds: $s }, from: $f, to: $t, bucket: LOCAL_DAY) {
    sensor { id } points { bucket avg min max count } } }`;
const ask = async (sensor: string, from: string, to: string) => {
  const { body } = await hub.gql(admin, Q, { s: [sensor], f: from, t: to });
  expect(body.errors).toBeUndefined();
  return body.data.aggregatedSeries[0].points as { bucket: string; avg: number; count: number }[];
};
const day = (from: string, to: string) => {
  const t = truth(Date.parse(from), Date.parse(to));
  return { bucket: new Date(from).toISOString(), ...t };
};

describe('LOCAL_DAY buckets', () => {
  it("gives Berlin's days, the 25-hour one included, rounded out to whole local days, exact", async () => {
    // 2026-10-24 is CEST (starts 22:00Z the day before); 2026-10-25 runs 25 hours, to 23:00Z; 2026-10-26 is CET.
    const points = await ask('M-101-TEMP', '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z');
    const want = [
      day('2026-10-23T22:00:00Z', '2026-10-24T22:00:00Z'),
      day('2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z'),
      day('2026-10-25T23:00:00Z', '2026-10-26T23:00:00Z'),
    ];
    expect(want.map((w) => w.count)).toEqual([144, 150, 144]);
    expect(points.map((p) => ({ ...p, avg: Number(p.avg.toFixed(9)) }))).toEqual(
      want.map((w) => ({ ...w, avg: Number(w.avg.toFixed(9)) })),
    );
  });

  it('gives the whole 25-hour day for a range at its last hour', async () => {
    const points = await ask('M-101-TEMP', '2026-10-25T22:30:00Z', '2026-10-25T23:00:00Z');
    expect(points.map((p) => [p.bucket, p.count])).toEqual([['2026-10-24T22:00:00.000Z', 150]]);
  });

  it("gives Kathmandu's days at 18:15Z, from the minute rollups, exact", async () => {
    const points = await ask('M-K1-TEMP', '2026-10-24T00:00:00Z', '2026-10-25T00:00:00Z');
    // Local 2026-10-24 is 2026-10-23T18:15Z to 2026-10-24T18:15Z; local 2026-10-25 starts at 18:15Z on the 24th.
    const want = [
      day('2026-10-23T18:15:00Z', '2026-10-24T18:15:00Z'),
      day('2026-10-24T18:15:00Z', '2026-10-25T18:15:00Z'),
    ];
    expect(points.map((p) => ({ ...p, avg: Number(p.avg.toFixed(9)) }))).toEqual(
      want.map((w) => ({ ...w, avg: Number(w.avg.toFixed(9)) })),
    );
  });

  it("gives LINE-1's shifts whole, the 9-hour night shift once though two operators worked it", async () => {
    const { body } = await hub.gql(
      admin,
      `{ aggregatedSeries(filter: { sensorIds: ["M-101-TEMP"] }, from: "2026-10-25T00:00:00Z",
        to: "2026-10-25T06:00:00Z", bucket: SHIFT) { points { bucket bucketEnd shiftNumber avg min max count } } }`,
    );
    expect(body.errors).toBeUndefined();
    const shift = (from: string, to: string, shiftNumber: number) => ({
      ...day(from, to),
      bucketEnd: new Date(to).toISOString(),
      shiftNumber,
    });
    const want = [
      shift('2026-10-24T20:00:00Z', '2026-10-25T05:00:00Z', 3),
      shift('2026-10-25T05:00:00Z', '2026-10-25T13:00:00Z', 1),
    ];
    expect(want.map((w) => w.count)).toEqual([54, 48]);
    const round = (p: { avg: number }) => ({ ...p, avg: Number(p.avg.toFixed(9)) });
    expect(body.data.aggregatedSeries[0].points.map(round)).toEqual(want.map(round));
  });

  it('keeps FIFTEEN_MINUTES buckets on UTC quarter hours', async () => {
    const { body } = await hub.gql(
      admin,
      `{ aggregatedSeries(filter: { sensorIds: ["M-101-TEMP"] }, from: "2026-10-23T00:05:00Z",
        to: "2026-10-23T00:40:00Z", bucket: FIFTEEN_MINUTES) { points { bucket count } } }`,
    );
    expect(body.data.aggregatedSeries[0].points).toEqual([
      { bucket: '2026-10-23T00:00:00.000Z', count: 2 },
      { bucket: '2026-10-23T00:15:00.000Z', count: 1 },
      { bucket: '2026-10-23T00:30:00.000Z', count: 2 },
    ]);
  });
});
