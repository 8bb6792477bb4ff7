import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { sql } from 'kysely';
import { TelemetryCaches } from '../../lib/telemetry/caches.ts';
import { DEFAULT_PIPELINE, TelemetryPipeline } from '../../lib/telemetry/pipeline.ts';
import type { BatchOutcome, IncomingReading, SourceBatch } from '../../lib/telemetry/types.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

let hub: TestHub;
let caches: TelemetryCaches;
let pipeline: TelemetryPipeline;
let admin: string;
let dbUrl: string;
/** When the demo plant was seeded: its week of orders and shifts starts the UTC day before. */
let seededAt: Date;

beforeAll(async () => {
  seededAt = new Date();
  hub = await startTestHub({ seed: true });
  admin = await hub.token({ role: 'admin' });
  dbUrl = hub.databaseUrl;
  caches = new TelemetryCaches(hub.db, dbUrl);
  await caches.start();
  pipeline = new TelemetryPipeline(hub.db, caches, new Registry(), { ...DEFAULT_PIPELINE, batchMaxDelayMs: 5 });
});
afterAll(async () => {
  await pipeline?.stop();
  await caches?.stop();
  await hub?.close();
});

/** Submits readings as one source batch and resolves when the pipeline acknowledges it (after commit). */
function send(readings: IncomingReading[], deadLetters: SourceBatch['deadLetters'] = []): Promise<BatchOutcome> {
  return new Promise((resolve, reject) => {
    void pipeline.submit({ source: 'MQTT', readings, deadLetters, ack: resolve, fail: reject });
  });
}

/**
 * About a minute back, on a whole second, but never on a time the demo seed stored a reading at (one a sensor per
 * whole minute, a duplicate would be a no-op): the tests below go up to 5 s before it and 10 ms after.
 */
const minuteAgo = () => {
  const ms = Math.floor(Date.now() / 1000) * 1000 - 60_000;
  return new Date(ms % 60_000 < 6_000 ? ms + 500 : ms);
};

describe('the telemetry pipeline', () => {
  it(`stores readings enriched with the work order, recipe, \
shift and operator of their line at their time`, async () => {
    const ts = minuteAgo();
    await send([{ sensorId: 'M-101-TEMP', ts, value: 61.5 }]);
    const { body } = await hub.gql(
      admin,
      `query($f: DateTime!, $t: DateTime!) { readings(sensorId: "M-101-TEMP", from: $f, to: $t) {
      nodes { value quality source operatorId workOrder { number status } } } }`,
      { f: ts.toISOString(), t: new Date(ts.getTime() + 1).toISOString() },
    );
    expect(body.errors).toBeUndefined();
    const r = body.data.readings.nodes[0];
    expect(r).toMatchObject({ value: 61.5, quality: 100, source: 'MQTT' });
    // The demo plant's fixture, worked out by hand (app/demo/seed.ts): LINE-1 runs 8-hour orders WO-1001, WO-1002...
    // from yesterday 06:00 UTC, and shifts 06-14, 14-22 and 22-06 on the site's clock (Europe/Berlin) with operators
    // OP-11, OP-12 and OP-13.
    const t = ts.getTime();
    const today = Date.UTC(seededAt.getUTCFullYear(), seededAt.getUTCMonth(), seededAt.getUTCDate());
    const order = Math.floor((t - (today - 86_400_000 + 6 * 3_600_000)) / (8 * 3_600_000)) + 1;
    const hour = Number(
      new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: 'numeric', hourCycle: 'h23' }).format(ts),
    );
    const shift = hour >= 6 && hour < 14 ? 1 : hour >= 14 && hour < 22 ? 2 : 3;
    expect(r.workOrder.number).toBe(`WO-1${String(order).padStart(3, '0')}`);
    expect(r.operatorId).toBe(`OP-1${shift}`);
  });

  it('makes a redelivered batch a no-op: no second row, no double count in the rollups', async () => {
    const ts = new Date(minuteAgo().getTime() - 5_000);
    const batch = [{ sensorId: 'M-102-TEMP', ts, value: 50 }];
    await send(batch);
    await send(batch);
    const rows = await sql<{ n: number; rollup: number }>`
      select (select count(*)::int from telemetry.readings r join telemetry.series s on s.id = r.series_id
        where s.sensor_id = 'M-102-TEMP' and r.ts = ${ts}) as n,
             (select sum(n)::int from telemetry.rollup_1m u join telemetry.series s on s.id = u.series_id
               where s.sensor_id = 'M-102-TEMP'
                 and u.bucket = date_trunc('minute', ${ts}::timestamptz)) as rollup`.execute(hub.db);
    expect(rows.rows[0]!.n).toBe(1);
    const before = rows.rows[0]!.rollup;
    await send(batch);
    const rollup = () =>
      sql<{
        rollup: number;
      }>`select sum(n)::int as rollup from telemetry.rollup_1m u join telemetry.series s on s.id = u.series_id
        where s.sensor_id = 'M-102-TEMP' and u.bucket = date_trunc('minute', ${ts}::timestamptz)`
        .execute(hub.db)
        .then((r) => r.rows[0]!.rollup);
    expect(await rollup()).toBe(before);
    // A redelivery mixed with a new reading (the plain insert fails, the batch runs again idempotently): the new
    // one is stored and counted once, the old one not again.
    await send([...batch, { sensorId: 'M-102-TEMP', ts: new Date(ts.getTime() + 1), value: 51 }]);
    expect(await rollup()).toBe(before + 1);
  });

  it(`tells each source what became of its readings: stored anew, already stored, refused, and its dead letters, \
even when two sources' batches commit together`, async () => {
    const ts = new Date(minuteAgo().getTime() - 4_000);
    const one = { sensorId: 'M-103-TEMP', ts, value: 40 };
    const two = { sensorId: 'M-103-TEMP', ts: new Date(ts.getTime() + 2), value: 41 };
    expect(await send([one])).toEqual({ stored: 1, duplicate: 0, rejected: 0, deadLetters: 0, unresolved: 0 });
    const dl = [{ reason: 'UNMAPPABLE_PAYLOAD' as const, detail: 'no sensor id' }];
    const unknown = { sensorId: 'NO-SUCH-SENSOR', ts, value: 1 };
    // Submitted together, these commit in one transaction (the batch waits batchMaxDelayMs for more).
    const [a, b] = await Promise.all([send([one, two, unknown], dl), send([two])]);
    expect(a).toEqual({ stored: 1, duplicate: 1, rejected: 1, deadLetters: 1, unresolved: 1 });
    expect(b).toEqual({ stored: 0, duplicate: 1, rejected: 0, deadLetters: 0, unresolved: 0 });
  });

  it(`applies range rules: ALERT raises one alert when a series enters violation, REJECT keeps the value out, \
DEGRADE lowers quality`, async () => {
    const eng = await hub.token({ role: 'engineer' });
    const rule = async (sensor: string, action: string) => {
      const { body } = await hub.gql(
        eng,
        `mutation { createRangeRule(input: { machineId: "${sensor.slice(0, 5)}", sensorId: "${sensor}",
          signalType: "vibration", minValue: 0, maxValue: 10, action: ${action} }) { id } }`,
      );
      expect(body.errors).toBeUndefined();
    };
    await rule('M-201-VIBR', 'REJECT');
    await rule('M-202-VIBR', 'DEGRADE');
    const t0 = minuteAgo().getTime();
    await send([
      { sensorId: 'M-103-VIBR', ts: new Date(t0 + 1), value: 99 },
      { sensorId: 'M-103-VIBR', ts: new Date(t0 + 2), value: 98 },
      { sensorId: 'M-201-VIBR', ts: new Date(t0 + 3), value: 55 },
      { sensorId: 'M-202-VIBR', ts: new Date(t0 + 4), value: 44 },
    ]);
    const { body } = await hub.gql(
      admin,
      `query($f: DateTime!, $t: DateTime!) {
      a: alerts(filter: { machineIds: ["M-103", "M-201", "M-202"], type: [OUT_OF_RANGE],
      from: $f }) { nodes { machine { id } value severity } }
      rejected: readings(sensorId: "M-201-VIBR", from: $f, to: $t) { nodes { value } }
      degraded: readings(sensorId: "M-202-VIBR", from: $f, to: $t) { nodes { value quality } }
      dl: deadLetters(filter: { reason: [REJECTED_BY_RULE] }) { nodes { sensor { id } machine { id }
      detail payloadText } } }`,
      { f: new Date(t0).toISOString(), t: new Date(t0 + 10).toISOString() },
    );
    expect(body.errors).toBeUndefined();
    const alerts = body.data.a.nodes.map((n: any) => [n.machine.id, n.value, n.severity]).sort();
    expect(alerts).toEqual([
      ['M-103', 99, 'WARNING'],
      ['M-201', 55, 'WARNING'],
      ['M-202', 44, 'INFO'],
    ]);
    expect(body.data.rejected.nodes).toEqual([]);
    expect(body.data.degraded.nodes).toEqual([{ value: 44, quality: 50 }]);
    expect(body.data.dl.nodes).toEqual([
      expect.objectContaining({ sensor: { id: 'M-201-VIBR' }, machine: { id: 'M-201' } }),
    ]);
  });

  it(`turns readings of unknown sensors and the sources own dead letters into queryable dead letters, \
and keeps the good ones`, async () => {
    const ts = minuteAgo();
    await send(
      [
        { sensorId: 'NO-SUCH-SENSOR', ts, value: 1 },
        { sensorId: 'M-103-TEMP', ts, value: 40 },
      ],
      [{ reason: 'MALFORMED_PAYLOAD', detail: 'not JSON', topic: 'plant/x', payload: Buffer.from([0xff, 0xfe, 0x00]) }],
    );
    const { body } = await hub.gql(
      admin,
      `{ deadLetters(filter: { reason: [UNKNOWN_SENSOR, MALFORMED_PAYLOAD] }) { totalCount nodes { reason source topic
        payloadText payloadBase64 payloadBytes } } }`,
    );
    expect(body.errors).toBeUndefined();
    const byReason = Object.fromEntries(body.data.deadLetters.nodes.map((n: any) => [n.reason, n]));
    expect(byReason.MALFORMED_PAYLOAD).toEqual({
      reason: 'MALFORMED_PAYLOAD',
      source: 'MQTT',
      topic: 'plant/x',
      payloadText: null,
      payloadBase64: '//4A',
      payloadBytes: 3,
    });
    expect(byReason.UNKNOWN_SENSOR.payloadText).toContain('NO-SUCH-SENSOR');
    const stored = await sql<{
      n: number;
    }>`select count(*)::int as n from telemetry.readings r join telemetry.series s on s.id = r.series_id
      where s.sensor_id = 'M-103-TEMP' and r.ts = ${ts}`.execute(hub.db);
    expect(stored.rows[0]!.n).toBe(1);
  });

  it("refuses a reading whose stated unit is not its sensor's unit", async () => {
    const ts = minuteAgo();
    await send([{ sensorId: 'M-101-TEMP', ts: new Date(ts.getTime() + 7), value: 140, unit: 'degF' }]);
    const { body } = await hub.gql(
      admin,
      '{ deadLetters(filter: { reason: [UNKNOWN_UNIT] }) { nodes { sensor { id } detail } } }',
    );
    expect(body.data.deadLetters.nodes).toEqual([
      { sensor: { id: 'M-101-TEMP' }, detail: 'unit "degF" is not the sensor\'s unit "degC"' },
    ]);
  });

  it(`refuses values that are not finite numbers (a Sparkplug double may be NaN) as INVALID_VALUE, \
and stores the rest`, async () => {
    const ts = minuteAgo();
    await send([
      { sensorId: 'M-102-VIBR', ts, value: NaN },
      { sensorId: 'M-102-VIBR', ts: new Date(ts.getTime() + 1), value: Infinity },
      { sensorId: 'M-102-VIBR', ts: new Date(ts.getTime() + 2), value: 3.5 },
    ]);
    const { body } = await hub.gql(
      admin,
      '{ deadLetters(filter: { reason: [INVALID_VALUE] }) { nodes { sensor { id } detail } } }',
    );
    expect(body.data.deadLetters.nodes).toEqual(
      expect.arrayContaining([
        { sensor: { id: 'M-102-VIBR' }, detail: 'value NaN is not a finite number' },
        { sensor: { id: 'M-102-VIBR' }, detail: 'value Infinity is not a finite number' },
      ]),
    );
    const stored = await sql<{
      n: number;
    }>`select count(*)::int as n from telemetry.readings r join telemetry.series s on s.id = r.series_id
      where s.sensor_id = 'M-102-VIBR' and r.ts >= ${ts} and r.ts < ${new Date(ts.getTime() + 3)}`.execute(hub.db);
    expect(stored.rows[0]!.n).toBe(1);
  });

  it('writes awkward text and float values exactly (the writer builds its own array literals)', async () => {
    const { writeReadings } = await import('../../lib/telemetry/readings.repo.ts');
    const [series] = await hub.db
      .selectFrom('telemetry.series')
      .select('id')
      .where('sensorId', '=', 'M-103-TEMP')
      .execute();
    const ts = new Date(Date.UTC(2025, 5, 1, 12, 0, 0, 123));
    const odd = ['we"ird\\,{x}', 'NULL', ''];
    const inserted = await writeReadings(
      hub.db,
      odd.map((operatorId, i) => ({
        seriesId: series!.id,
        ts: new Date(ts.getTime() + i),
        value: [0.1, -1e-300, 1e21][i]!,
        quality: 77,
        source: 1,
        operatorId,
      })),
    );
    expect(inserted).toBe(3);
    const rows = await hub.db
      .selectFrom('telemetry.readings')
      .select(['ts', 'value', 'operatorId', 'workOrderId'])
      .where('seriesId', '=', series!.id)
      .where('ts', '>=', ts)
      .where('ts', '<', new Date(ts.getTime() + 3))
      .orderBy('ts')
      .execute();
    expect(rows).toEqual(
      odd.map((operatorId, i) => ({
        ts: new Date(ts.getTime() + i),
        value: [0.1, -1e-300, 1e21][i],
        operatorId,
        workOrderId: null,
      })),
    );
  });

  it(`stores the same rows, rollups and latest values through the COPY path as through the idempotent \
insert`, async () => {
    const { writeReadings } = await import('../../lib/telemetry/readings.repo.ts');
    const { commitBatch } = await import('../../lib/telemetry/pipeline.repo.ts');
    const eng = await hub.token({ role: 'engineer' });
    for (const id of ['M-201-COPY', 'M-201-INSERT']) {
      const s = await hub.gql(
        eng,
        `mutation($id: ID!) { createSensor(input: { id: $id, name: "probe", type: "probe", unit: "u",
          machineId: "M-201", protocol: MQTT }) { id } }`,
        { id },
      );
      expect(s.body.errors).toBeUndefined();
    }
    const ids = await hub.db
      .selectFrom('telemetry.series')
      .select(['id', 'sensorId'])
      .where('sensorId', 'in', ['M-201-COPY', 'M-201-INSERT'])
      .orderBy('sensorId')
      .execute();
    const [viaCopy, viaInsert] = ids.map((s) => s.id);
    const wo = '0b8f3c1e-8d5a-4c1e-9f00-1234567890ab',
      shift = 'f0e1d2c3-b4a5-4697-8899-aabbccddeeff';
    // Across minutes and hours, before 2000 (negative binary timestamps), with NULLs, uuids and awkward text.
    const times = [
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2000, 0, 1),
      Date.UTC(2025, 5, 1, 12, 59, 30, 1),
      Date.UTC(2025, 5, 1, 12, 59, 45),
      Date.UTC(2025, 5, 1, 13, 0, 0, 500),
    ];
    const values = [-1e-300, 1e21, 0.1, 42.125, -7];
    const operators = ['we"ird\\,{x}', null, 'NULL', 'Zoë 運転', ''];
    const rows = (seriesId: number) =>
      times.map((t, i) => ({
        seriesId,
        ts: new Date(t),
        value: values[i]!,
        quality: [0, 50, 77, 100, 100][i]!,
        source: 1,
        workOrderId: i % 2 ? wo : null,
        shiftId: i === 2 ? shift : null,
        recipeId: null,
        operatorId: operators[i],
      }));
    expect((await commitBatch(hub.db, rows(viaCopy!), [], [])).alerts).toEqual([]);
    expect(await writeReadings(hub.db, rows(viaInsert!))).toBe(times.length);

    const stored = (seriesId: number) =>
      hub.db
        .selectFrom('telemetry.readings')
        .select(['ts', 'value', 'quality', 'source', 'workOrderId', 'shiftId', 'recipeId', 'operatorId'])
        .where('seriesId', '=', seriesId)
        .orderBy('ts')
        .execute();
    const expected = rows(0).map(({ seriesId: _, ...r }) => r);
    expect(await stored(viaCopy!)).toEqual(expected);
    expect(await stored(viaInsert!)).toEqual(expected);

    for (const table of ['telemetry.rollup_1m', 'telemetry.rollup_1h'] as const) {
      const rollups = (seriesId: number) =>
        hub.db
          .selectFrom(table)
          .select(['bucket', 'n', 'sum', 'min', 'max'])
          .where('seriesId', '=', seriesId)
          .orderBy('bucket')
          .execute();
      const [a, b] = [await rollups(viaCopy!), await rollups(viaInsert!)];
      expect(a.length).toBe(4); // 23:59, 00:00, 12:59, 13:00 (and hours 23, 0, 12, 13)
      expect(a).toEqual(b);
    }
    const latest = await hub.db
      .selectFrom('telemetry.latest')
      .select(['seriesId', 'ts', 'value', 'quality'])
      .where('seriesId', 'in', [viaCopy!, viaInsert!])
      .orderBy('seriesId')
      .execute();
    expect(latest.map(({ seriesId: _, ...l }) => l)).toEqual(
      [0, 1].map(() => ({ ts: new Date(times[4]!), value: -7, quality: 100 })),
    );
  });

  it(`writes a batch that holds a reading stored before idempotently: the new rows once, \
the rollups counted once`, async () => {
    const { commitBatch } = await import('../../lib/telemetry/pipeline.repo.ts');
    const [series] = await hub.db
      .selectFrom('telemetry.series')
      .select('id')
      .where('sensorId', '=', 'M-203-TEMP')
      .execute();
    const at = (s: number) => ({
      seriesId: series!.id,
      ts: new Date(Date.UTC(2025, 7, 1, 8, 0, s)),
      value: s,
      quality: 100,
      source: 1,
    });
    await commitBatch(hub.db, [at(1)], [], []);
    await commitBatch(hub.db, [at(1), at(2)], [], []); // COPY fails on at(1); the fallback stores at(2) alone
    const n = await hub.db
      .selectFrom('telemetry.readings')
      .select((e) => e.fn.countAll<string>().as('n'))
      .where('seriesId', '=', series!.id)
      .where('ts', '>=', at(0).ts)
      .where('ts', '<', at(3).ts)
      .executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(2);
    const r = await hub.db
      .selectFrom('telemetry.rollup_1m')
      .select(['n', 'sum'])
      .where('seriesId', '=', series!.id)
      .where('bucket', '=', at(0).ts)
      .executeTakeFirstOrThrow();
    expect(r).toEqual({ n: 2, sum: 3 });
  });

  it('follows production changes at once: a new sensor and a new work order apply to the next reading', async () => {
    const eng = await hub.token({ role: 'engineer' });
    // An urgent order started on LINE-2 beside the running one: ACTIVE with a higher priority wins.
    const start = new Date(Date.now() - 600_000);
    const wo = await hub.gql(
      eng,
      `mutation($s: DateTime!, $e: DateTime!) { createWorkOrder(input: { number: "WO-LATE", lineId: "LINE-2",
        plannedStart: $s, plannedEnd: $e, plannedQuantity: 5, priority: 1, status: ACTIVE }) { id } }`,
      { s: start.toISOString(), e: new Date(start.getTime() + 3_600_000).toISOString() },
    );
    expect(wo.body.errors).toBeUndefined();
    const s = await hub.gql(
      eng,
      `mutation { createSensor(input: { id: "M-203-FLOW", name: "flow", type: "flow", unit: "l/min", machineId: "M-203",
        protocol: MQTT }) { id } }`,
    );
    expect(s.body.errors).toBeUndefined();
    const ts = new Date(Date.now() - 1_000);
    await send([{ sensorId: 'M-203-FLOW', ts, value: 12 }]);
    const { body } = await hub.gql(
      admin,
      `query($f: DateTime!, $t: DateTime!) { readings(sensorId: "M-203-FLOW", from: $f, to: $t) { nodes { value
        workOrder { number } } } }`,
      { f: ts.toISOString(), t: new Date(ts.getTime() + 1).toISOString() },
    );
    expect(body.data.readings.nodes).toEqual([{ value: 12, workOrder: { number: 'WO-LATE' } }]);
  });
});
