import type { Db } from '../../lib/db/index.ts';
import { writeReadings } from '../../lib/telemetry/readings.repo.ts';
import type { StoredReading } from '../../lib/telemetry/types.ts';
import { seriesIdsBySensor } from '../../lib/telemetry/series.repo.ts';
import { SOURCE_CODES } from '../../lib/telemetry/sources.ts';
import { instantsOf, type WallTime, wallOf } from '../../lib/time/zoned.ts';
import { graphqlClient } from './client.ts';
import { insertAlerts } from '../../subgraphs/quality/quality.repo.ts';

/**
 * The demo plant, created through the public GraphQL API (so it is validated and audited like any plant's setup):
 * one site, two lines, six machines, products, recipes, a week of work orders, three shifts a day, sensors,
 * historian tag mappings, range rules, and the last two hours of readings (written by the telemetry writer).
 */
const DAY = 86_400_000;
const MACHINES = [
  { id: 'M-101', lineId: 'LINE-1', name: 'Injection press 101', type: 'press', idealCycleTimeSeconds: 12 },
  { id: 'M-102', lineId: 'LINE-1', name: 'Robot cell 102', type: 'robot', idealCycleTimeSeconds: 10 },
  { id: 'M-103', lineId: 'LINE-1', name: 'Packer 103', type: 'packer', idealCycleTimeSeconds: 6 },
  { id: 'M-201', lineId: 'LINE-2', name: 'CNC mill 201', type: 'cnc', idealCycleTimeSeconds: 45 },
  { id: 'M-202', lineId: 'LINE-2', name: 'CNC lathe 202', type: 'cnc', idealCycleTimeSeconds: 38 },
  { id: 'M-203', lineId: 'LINE-2', name: 'Washer 203', type: 'washer', idealCycleTimeSeconds: 20 },
];
const SIGNALS = [
  { type: 'temperature', unit: 'degC', min: 20, max: 90, base: 55, amp: 8 },
  { type: 'vibration', unit: 'mm/s', min: 0, max: 12, base: 4, amp: 2 },
];

/** The demo sensors, for the live simulator that `npm start` runs. */
export const DEMO_SENSORS = MACHINES.flatMap((m) =>
  SIGNALS.map((s) => ({
    id: `${m.id}-${s.type.slice(0, 4).toUpperCase()}`,
    lineId: m.lineId,
    base: s.base,
    amp: s.amp,
  })),
);

export async function isSeeded(db: Db): Promise<boolean> {
  return (await db.selectFrom('production.sites').select('id').limit(1).execute()).length > 0;
}

const SITE_ZONE = 'Europe/Berlin';

/** A calendar day as a wall time at midnight; Date.UTC rolls a day past the month's end over. */
function wall(year: number, month: number, day: number): WallTime {
  const d = new Date(Date.UTC(year, month - 1, day));
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: 0,
    minute: 0,
    second: 0,
    ms: 0,
  };
}

/** The local date `d` days after `w`, as YYYY-MM-DD. */
const localDate = (w: WallTime, d: number) => {
  const x = wall(w.year, w.month, w.day + d);
  return `${x.year}-${String(x.month).padStart(2, '0')}-${String(x.day).padStart(2, '0')}`;
};

export async function seedDemo(db: Db, gatewayUrl: string, adminToken: string, now = new Date()): Promise<void> {
  const gql = graphqlClient(gatewayUrl, adminToken);
  await gql(`mutation { createSite(input: { id: "SITE-1", name: "Demo plant", timezone: "${SITE_ZONE}" }) { id } }`);
  await gql(`mutation { createArea(input: { id: "AREA-A", siteId: "SITE-1", name: "Assembly hall" }) { id } }`);
  for (const [id, name] of [
    ['LINE-1', 'Moulding line'],
    ['LINE-2', 'Machining line'],
  ]) {
    await gql(`mutation($i: CreateLineInput!) { createLine(input: $i) { id } }`, {
      i: { id, siteId: 'SITE-1', areaId: 'AREA-A', name },
    });
  }
  for (const m of MACHINES)
    await gql(`mutation($i: CreateMachineInput!) { createMachine(input: $i) { id } }`, { i: m });

  const products = [
    { id: 'P-CAP', name: 'Bottle cap 28mm', family: 'caps', sku: 'SKU-1001', standardCycleTimeSeconds: 12 },
    { id: 'P-HSG', name: 'Pump housing', family: 'housings', sku: 'SKU-2001', standardCycleTimeSeconds: 45 },
    { id: 'P-SHF', name: 'Drive shaft', family: 'shafts', sku: 'SKU-2002', standardCycleTimeSeconds: 38 },
  ];
  for (const p of products)
    await gql(`mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }`, { i: p });
  const recipes: Record<string, string[]> = { 'LINE-1': [], 'LINE-2': [] };
  for (const r of [
    {
      code: 'RCP-CAP',
      productId: 'P-CAP',
      lineId: 'LINE-1',
      targetCycleTimeSeconds: 12,
      setupTimeSeconds: 900,
      parameters: { meltTempC: 230 },
    },
    {
      code: 'RCP-HSG',
      productId: 'P-HSG',
      lineId: 'LINE-2',
      targetCycleTimeSeconds: 45,
      setupTimeSeconds: 1800,
      parameters: { spindleRpm: 8000 },
    },
    {
      code: 'RCP-SHF',
      productId: 'P-SHF',
      lineId: 'LINE-2',
      targetCycleTimeSeconds: 38,
      setupTimeSeconds: 1200,
      parameters: { spindleRpm: 6000 },
    },
  ]) {
    const { createRecipe } = await gql<{ createRecipe: { id: string } }>(
      `mutation($i: CreateRecipeInput!) { createRecipe(input: $i) { id } }`,
      { i: r },
    );
    recipes[r.lineId]!.push(createRecipe.id);
  }

  // A week of 8-hour work orders per line, from yesterday 06:00 UTC; the one running now is ACTIVE.
  const day0 = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - DAY;
  const orders: { lineId: string; id: string; recipeId: string; start: number; end: number }[] = [];
  for (const lineId of ['LINE-1', 'LINE-2']) {
    for (let i = 0; i < 21; i++) {
      const start = day0 + 6 * 3_600_000 + i * 8 * 3_600_000;
      const end = start + 8 * 3_600_000;
      const recipeId = recipes[lineId]![i % recipes[lineId]!.length]!;
      const status = end <= now.getTime() ? 'COMPLETED' : start <= now.getTime() ? 'ACTIVE' : 'PLANNED';
      const { createWorkOrder } = await gql<{ createWorkOrder: { id: string } }>(
        `mutation($i: CreateWorkOrderInput!) { createWorkOrder(input: $i) { id } }`,
        {
          i: {
            number: `WO-${lineId.slice(-1)}${String(i + 1).padStart(3, '0')}`,
            lineId,
            recipeId,
            plannedStart: new Date(start).toISOString(),
            plannedEnd: new Date(end).toISOString(),
            plannedQuantity: lineId === 'LINE-1' ? 2400 : 640,
            priority: 5,
            status,
          },
        },
      );
      orders.push({ lineId, id: createWorkOrder.id, recipeId, start, end });
    }
  }
  // Three shifts a day (06-14, 14-22, 22-06 on the site's clock, so a night shift across a DST change is 7 or 9
  // hours) per line for the same week, from yesterday in the site's zone.
  const shifts: { lineId: string; id: string; operatorId: string; start: number; end: number }[] = [];
  const yesterday = wallOf(SITE_ZONE, now.getTime() - DAY);
  const at = (d: number, hour: number) =>
    instantsOf(SITE_ZONE, { ...wall(yesterday.year, yesterday.month, yesterday.day + d), hour })[0]!;
  for (const lineId of ['LINE-1', 'LINE-2']) {
    for (let d = 0; d < 7; d++) {
      for (let n = 1; n <= 3; n++) {
        const start = at(d, 6 + (n - 1) * 8);
        const end = at(d, 14 + (n - 1) * 8);
        const operatorId = `OP-${lineId.slice(-1)}${n}`;
        const { createShift } = await gql<{ createShift: { id: string } }>(
          `mutation($i: CreateShiftInput!) { createShift(input: $i) { id } }`,
          {
            i: {
              lineId,
              shiftDate: localDate(yesterday, d),
              shiftNumber: n,
              operatorId,
              operatorName: ['Ana', 'Ben', 'Chen', 'Dara', 'Emil', 'Fatma'][(Number(lineId.slice(-1)) - 1) * 3 + n - 1],
              role: 'OPERATOR',
              startsAt: new Date(start).toISOString(),
              endsAt: new Date(end).toISOString(),
            },
          },
        );
        shifts.push({ lineId, id: createShift.id, operatorId, start, end });
      }
    }
  }

  const sensorIds: string[] = [];
  for (const m of MACHINES) {
    for (const s of SIGNALS) {
      const id = `${m.id}-${s.type.slice(0, 4).toUpperCase()}`;
      sensorIds.push(id);
      await gql(`mutation($i: CreateSensorInput!) { createSensor(input: $i) { id } }`, {
        i: {
          id,
          name: `${m.name} ${s.type}`,
          type: s.type,
          unit: s.unit,
          machineId: m.id,
          protocol: 'MQTT',
          topic: `plant/${m.lineId}/${id}`,
          minExpected: s.min,
          maxExpected: s.max,
        },
      });
      await gql(`mutation($i: CreateRangeRuleInput!) { createRangeRule(input: $i) { id } }`, {
        i: {
          machineId: m.id,
          sensorId: id,
          signalType: s.type,
          minValue: s.min,
          maxValue: s.max,
          unit: s.unit,
          action: 'ALERT',
        },
      });
    }
    await gql(`mutation($i: CreateTagMappingInput!) { createTagMapping(input: $i) { id } }`, {
      i: {
        historianSystem: 'PI',
        tag: `${m.lineId}.${m.id}.SPEED`,
        machineId: m.id,
        signalType: 'speed',
        unit: 'parts/min',
        scaleFactor: 1,
        offset: 0,
      },
    });
  }

  // Two hours of one-per-minute readings per sensor, tagged with the work order and shift of their time.
  const series = await seriesIdsBySensor(db, sensorIds);
  const batch: StoredReading[] = [];
  for (const m of MACHINES) {
    SIGNALS.forEach((s, si) => {
      const seriesId = series.get(`${m.id}-${s.type.slice(0, 4).toUpperCase()}`)!;
      for (let k = 120; k >= 0; k--) {
        const ts = Math.floor(now.getTime() / 60_000) * 60_000 - k * 60_000;
        const wo = orders.find((o) => o.lineId === m.lineId && o.start <= ts && ts < o.end);
        const sh = shifts.find((o) => o.lineId === m.lineId && o.start <= ts && ts < o.end);
        const value = s.base + s.amp * Math.sin(ts / 600_000 + si + m.id.charCodeAt(4));
        batch.push({
          seriesId,
          ts: new Date(ts),
          value: Math.round(value * 100) / 100,
          quality: 100,
          source: SOURCE_CODES.DEMO,
          workOrderId: wo?.id,
          recipeId: wo?.recipeId,
          shiftId: sh?.id,
          operatorId: sh?.operatorId,
        });
      }
    });
  }
  await writeReadings(db, batch);

  // A few open alerts so quality views are not empty.
  await insertAlerts(db, [
    {
      machineId: 'M-101',
      sensorId: 'M-101-TEMP',
      type: 'OUT_OF_RANGE',
      severity: 'WARNING',
      ts: new Date(now.getTime() - 600_000),
      metric: 'temperature',
      value: 94.2,
      expectedMin: 20,
      expectedMax: 90,
      message: 'temperature 94.2 degC above 90',
    },
    {
      machineId: 'M-202',
      sensorId: 'M-202-VIBR',
      type: 'GAP',
      severity: 'INFO',
      ts: new Date(now.getTime() - 1_800_000),
      metric: 'vibration',
      message: 'no readings for 4 minutes',
    },
  ]);
}
