import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

let hub: TestHub;
let viewer: string;
beforeAll(async () => {
  hub = await startTestHub({ seed: true });
  viewer = await hub.token({ role: 'viewer' });
});
afterAll(() => hub?.close());

describe('one query across all four subgraphs, through the gateway', () => {
  it(`resolves a line with its machines, sensors, latest readings, tag mappings, \
open alerts and current work order`, async () => {
    const { status, body } = await hub.gql(
      viewer,
      `{ line(id: "LINE-1") {
          name site { name }
          currentWorkOrder { number status product { id } }
          currentShifts { operatorId }
          machines {
            id name line { id }
            sensors { id type unit }
            latestReadings { value quality ts source sensor { id } workOrder { id number } }
            tagMappings { tag historianSystem }
            openAlerts { type severity message }
          }
      } }`,
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const line = body.data.line;
    expect(line.name).toBe('Moulding line');
    expect(line.site.name).toBe('Demo plant');
    expect(line.currentWorkOrder.status).toBe('ACTIVE');
    expect(line.currentWorkOrder.product.id).toBe('P-CAP');
    expect(line.currentShifts).toHaveLength(1);
    expect(line.machines.map((m: any) => m.id)).toEqual(['M-101', 'M-102', 'M-103']);
    const m101 = line.machines[0];
    expect(m101.line.id).toBe('LINE-1');
    expect(m101.sensors.map((s: any) => s.type).sort()).toEqual(['temperature', 'vibration']);
    expect(m101.latestReadings).toHaveLength(2);
    for (const r of m101.latestReadings) {
      expect(typeof r.value).toBe('number');
      expect(r.source).toBe('DEMO');
      // The reading's work order is resolved by production from the id iot stored with the reading.
      expect(r.workOrder.number).toMatch(/^WO-1/);
    }
    expect(m101.tagMappings).toEqual([{ tag: 'LINE-1.M-101.SPEED', historianSystem: 'PI' }]);
    expect(m101.openAlerts).toEqual([expect.objectContaining({ type: 'OUT_OF_RANGE', severity: 'WARNING' })]);
  });

  it('batches entity fields: six machines cost one sensors query and one latest-readings query', async () => {
    const before = hub.queries.length;
    const { body } = await hub.gql(
      viewer,
      `{ machines(first: 10) { nodes { id sensors { id } latestReadings { value } openAlerts { id } } } }`,
    );
    expect(body.errors).toBeUndefined();
    expect(body.data.machines.nodes).toHaveLength(6);
    const issued = hub.queries.slice(before);
    expect(issued.filter((q) => q.includes('from "iot"."sensors"')).length).toBe(1);
    expect(issued.filter((q) => q.includes('"telemetry"."latest"')).length).toBe(1);
    expect(issued.filter((q) => q.includes('from "quality"."alerts"')).length).toBe(1);
  });
});

describe('cursor pagination', () => {
  it('walks all work orders of a line in pages without gaps or repeats', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    for (let i = 0; i < 20; i++) {
      const { body }: { body: any } = await hub.gql(
        viewer,
        `query($after: String) { workOrders(filter: { lineId: "LINE-2" }, first: 5, after: $after) {
            totalCount edges { cursor node { number plannedStart } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      expect(body.errors).toBeUndefined();
      const c = body.data.workOrders;
      total = c.totalCount;
      seen.push(...c.edges.map((e: any) => e.node.number));
      if (!c.pageInfo.hasNextPage) break;
      after = c.pageInfo.endCursor;
    }
    expect(total).toBe(21);
    expect(seen).toHaveLength(21);
    expect(new Set(seen).size).toBe(21);
  });

  it('rejects a page size out of range and a forged cursor with BAD_USER_INPUT', async () => {
    const big = await hub.gql(viewer, `{ machines(first: 100000) { nodes { id } } }`);
    expect(big.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const forged = await hub.gql(viewer, `{ machines(after: "not-a-cursor") { nodes { id } } }`);
    expect(forged.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('bad arguments', () => {
  it('gives BAD_USER_INPUT for an invalid DateTime, an inverted range and a missing selector', async () => {
    const badDate = await hub.gql(
      viewer,
      `{ readings(sensorId: "M-101-TEMP", from: "yesterday", to: "2030-01-01T00:00:00Z") { nodes { value } } }`,
    );
    expect(badDate.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const inverted = await hub.gql(
      viewer,
      `{ readings(sensorId: "M-101-TEMP", from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z") { nodes {
        value } } }`,
    );
    expect(inverted.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const none = await hub.gql(
      viewer,
      `{ readings(from: "2030-01-01T00:00:00Z", to: "2030-01-02T00:00:00Z") { nodes { value } } }`,
    );
    expect(none.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('gives GRAPHQL_VALIDATION_FAILED for a field that does not exist, and never a stack trace', async () => {
    const { body } = await hub.gql(viewer, `{ machines { nodes { id colour } } }`);
    expect(body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(JSON.stringify(body)).not.toMatch(/stacktrace|at .*\.ts:\d+/);
  });

  it('reads raw readings of a sensor in a time range, oldest first', async () => {
    const to = new Date(Date.now() + 60_000).toISOString();
    const from = new Date(Date.now() - 3 * 3_600_000).toISOString();
    const { body } = await hub.gql(
      viewer,
      `query($from: DateTime!, $to: DateTime!) { readings(sensorId: "M-201-TEMP", from: $from, to: $to, first: 50) {
        nodes { ts value sensor { id } machine { id name } } pageInfo { hasNextPage } } }`,
      { from, to },
    );
    expect(body.errors).toBeUndefined();
    const nodes = body.data.readings.nodes;
    expect(nodes).toHaveLength(50);
    expect(body.data.readings.pageInfo.hasNextPage).toBe(true);
    expect(nodes[0].machine).toEqual({ id: 'M-201', name: 'CNC mill 201' });
    const ts = nodes.map((n: any) => Date.parse(n.ts));
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
  });
});

describe('operations endpoints', () => {
  it('serves /healthz, /readyz and Prometheus /metrics on the gateway and each subgraph', async () => {
    const bases = [hub.url, ...Object.values(hub.subgraphUrls)].map((u) => u.replace(/\/graphql$/, ''));
    for (const base of bases) {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain('process_cpu_user_seconds_total');
    }
    const gw = await (await fetch(hub.url.replace(/\/graphql$/, '/metrics'))).text();
    expect(gw).toMatch(/hub_graphql_operations_total\{[^}]*operation="query"/);
  });
});

describe('aggregated series from the rollups', () => {
  it('aggregates many machines and signals per bucket, exactly as the raw readings would', async () => {
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const from = new Date(Date.now() - 4 * 3_600_000).toISOString();
    const { body } = await hub.gql(
      viewer,
      `query($f: DateTime!, $t: DateTime!) {
      hourly: aggregatedSeries(filter: { machineIds: ["M-101", "M-201"], signals: ["temperature"] }, from: $f, to: $t,
        bucket: ONE_HOUR) {
        sensor { id } machine { name } signal unit points { bucket avg min max count } }
      fiveMin: aggregatedSeries(filter: { sensorIds: ["M-102-VIBR"] }, from: $f, to: $t,
        bucket: FIVE_MINUTES) { points { count } } }`,
      { f: from, t: to },
    );
    expect(body.errors).toBeUndefined();
    const hourly = body.data.hourly;
    expect(hourly.map((s: any) => s.sensor.id)).toEqual(['M-101-TEMP', 'M-201-TEMP']);
    expect(hourly[0]).toMatchObject({ machine: { name: 'Injection press 101' }, signal: 'temperature', unit: 'degC' });
    // The demo seed wrote 121 one-per-minute readings per sensor.
    expect(hourly[0].points.reduce((n: number, p: any) => n + p.count, 0)).toBe(121);
    const raw = await hub.db
      .selectFrom('telemetry.readings as r')
      .innerJoin('telemetry.series as s', 's.id', 'r.seriesId')
      .select((eb) => [
        eb.fn.avg<number>('r.value').as('avg'),
        eb.fn.min<number>('r.value').as('min'),
        eb.fn.max<number>('r.value').as('max'),
      ])
      .where('s.sensorId', '=', 'M-101-TEMP')
      .where('r.ts', '>=', new Date(hourly[0].points[0].bucket))
      .where('r.ts', '<', new Date(Date.parse(hourly[0].points[0].bucket) + 3_600_000))
      .executeTakeFirstOrThrow();
    expect(hourly[0].points[0].avg).toBeCloseTo(Number(raw.avg), 9);
    expect(hourly[0].points[0].min).toBe(raw.min);
    expect(hourly[0].points[0].max).toBe(raw.max);
    // 121 readings on 121 consecutive whole minutes span exactly 25 five-minute buckets, whatever minute the seed
    // started on: the two partial ends share 6 readings (5+1, 4+2, ... 1+5), the 23 inside hold 5 each.
    const five = body.data.fiveMin[0].points.map((p: any) => p.count);
    expect(five).toHaveLength(25);
    expect(five[0] + five[24]).toBe(6);
    expect(five.slice(1, -1)).toEqual(Array(23).fill(5));
  });

  it('refuses a range with too many buckets with BAD_USER_INPUT', async () => {
    const { body } = await hub.gql(
      viewer,
      `{ aggregatedSeries(filter: { signals: ["temperature"] }, from: "2020-01-01T00:00:00Z",
        to: "2026-01-01T00:00:00Z", bucket: ONE_MINUTE) { signal } }`,
    );
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});
