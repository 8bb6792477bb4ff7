import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest.ts';
import { buildBirth, buildData, buildDeath, DataType, decodePayload } from '../../lib/telemetry/sparkplug/index.ts';
import { startHttpSensor, type FakeHttpSensor } from '../fakes/http-sensor.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/** Sparkplug B over the real Mosquitto and HTTP polling of a fake sensor, both through the one pipeline. */
const group = `G${randomBytes(3).toString('hex')}`;
let hub: TestHub;
let ingest: RunningIngest;
let edge: mqtt.MqttClient;
let sensor: FakeHttpSensor;
let admin: string;
const ncmd: Buffer[] = [];

beforeAll(async () => {
  hub = await startTestHub({ seed: true });
  admin = await hub.token({ role: 'admin' });
  const eng = await hub.token({ role: 'engineer' });
  for (const [id, machine, type] of [
    [`${group}/edge-07/press-3/Temperature`, 'M-101', 'temperature'],
    [`${group}/edge-07/press-3/Count`, 'M-101', 'count'],
    [`${group}/edge-07/press-5/Pressure`, 'M-102', 'pressure'],
    ['ENV-01', 'M-103', 'humidity'],
  ]) {
    const { body } = await hub.gql(eng, `mutation($i: CreateSensorInput!) { createSensor(input: $i) { id } }`, {
      i: { id, name: id, type, unit: 'x', machineId: machine, protocol: id === 'ENV-01' ? 'HTTP' : 'SPARKPLUG' },
    });
    expect(body.errors).toBeUndefined();
  }
  sensor = await startHttpSensor();
  sensor.setMode('/env', 'ok', { sensor: 'ENV-01' });
  const iot = IotConfigSchema.parse({
    mqtt: { clientId: `hub-sp-${group}`, sparkplug: { enabled: true, groups: [group], rebirthIntervalSeconds: 0 } },
    http: {
      enabled: true,
      endpoints: [
        {
          name: 'env',
          url: `${sensor.url}/env`,
          intervalSeconds: 1,
          timeoutSeconds: 1,
          mapping: { sensorId: { path: 'sensor' }, values: [{ path: 'value' }], timestamp: { path: 'ts' } },
        },
      ],
    },
    pipeline: { batchMaxDelayMs: 10 },
  });
  ingest = await startIngest({
    db: hub.db,
    databaseUrl: hub.databaseUrl,
    mqttUrl: inject('mqttUrl'),
    iot,
    registry: new Registry(),
    statusIntervalMs: 200,
  });
  edge = await mqtt.connectAsync(inject('mqttUrl'), { clientId: `edge-${group}` });
  await edge.subscribeAsync(`spBv1.0/${group}/NCMD/edge-07`);
  edge.on('message', (_t, p) => ncmd.push(p));
});

afterAll(async () => {
  await edge?.endAsync();
  await ingest?.stop();
  await sensor?.close();
  await hub?.close();
});

const latest = async (id: string) =>
  (await hub.gql(admin, `query($id: ID!) { sensor(id: $id) { latestReading { value source ts } } }`, { id })).body.data
    .sensor.latestReading;

describe('Sparkplug B', () => {
  it(`maps birth metrics and alias-only data to sensors; a seq gap is recorded and a rebirth requested; \
a death marks the series stale`, async () => {
    const t = Date.now() - 5_000;
    await edge.publishAsync(
      `spBv1.0/${group}/NBIRTH/edge-07`,
      buildBirth({ seq: 0, bdSeq: 1, timestamp: t, metrics: [] }),
    );
    await edge.publishAsync(
      `spBv1.0/${group}/DBIRTH/edge-07/press-3`,
      buildBirth({
        seq: 1,
        timestamp: t,
        metrics: [
          { name: 'Temperature', alias: 10, datatype: DataType.Float, value: 71.5, timestamp: t },
          { name: 'Count', alias: 12, datatype: DataType.UInt64, value: 18231, timestamp: t },
        ],
      }),
    );
    await edge.publishAsync(
      `spBv1.0/${group}/DDATA/edge-07/press-3`,
      buildData({
        seq: 2,
        timestamp: t + 1000,
        metrics: [{ alias: 10, datatype: DataType.Float, value: 72.25, timestamp: t + 1000 }],
      }),
    );
    await until(
      'the DDATA value',
      () => latest(`${group}/edge-07/press-3/Temperature`),
      (r) => r?.value === 72.25,
    );
    expect((await latest(`${group}/edge-07/press-3/Count`)).value).toBe(18231);
    expect((await latest(`${group}/edge-07/press-3/Temperature`)).source).toBe('SPARKPLUG');

    // seq 3 and 4 never arrive.
    await edge.publishAsync(
      `spBv1.0/${group}/DDATA/edge-07/press-3`,
      buildData({
        seq: 5,
        timestamp: t + 2000,
        metrics: [{ alias: 10, datatype: DataType.Float, value: 73, timestamp: t + 2000 }],
      }),
    );
    const gap = await until(
      'the loss event',
      async () =>
        (await hub.gql(admin, '{ lossEvents { nodes { source kind expected got stream } } }')).body.data.lossEvents
          .nodes,
      (n: any[]) => n.some((e) => e.stream === `${group}/edge-07`),
    );
    expect(gap.find((e: any) => e.stream === `${group}/edge-07`)).toEqual({
      source: 'SPARKPLUG',
      kind: 'SEQ_GAP',
      expected: 3,
      got: 5,
      stream: `${group}/edge-07`,
    });
    await until(
      'the rebirth request',
      async () => ncmd.length,
      (n) => n > 0,
    );
    expect(decodePayload(ncmd[0]!).metrics.map((m) => m.name)).toContain('Node Control/Rebirth');

    await edge.publishAsync(`spBv1.0/${group}/NDEATH/edge-07`, buildDeath({ bdSeq: 1 }));
    const stale = await until(
      'stale alerts',
      async () =>
        (
          await hub.gql(
            admin,
            '{ alerts(filter: { type: [STALE], machineId: "M-101" }) { nodes { sensor { id } message } } }',
          )
        ).body.data.alerts.nodes,
      (n: any[]) => n.length >= 2,
    );
    expect(stale.map((a: any) => a.sensor.id).sort()).toEqual([
      `${group}/edge-07/press-3/Count`,
      `${group}/edge-07/press-3/Temperature`,
    ]);
    expect(stale[0].message).toContain('NDEATH');
  });

  it("a DDEATH marks that device's series stale (alerts through the gateway), not the rest of the node", async () => {
    const t = Date.now() - 4_000;
    // The node comes back (the first test killed it) with a second device.
    await edge.publishAsync(
      `spBv1.0/${group}/NBIRTH/edge-07`,
      buildBirth({ seq: 0, bdSeq: 2, timestamp: t, metrics: [] }),
    );
    await edge.publishAsync(
      `spBv1.0/${group}/DBIRTH/edge-07/press-5`,
      buildBirth({
        seq: 1,
        timestamp: t,
        metrics: [{ name: 'Pressure', alias: 20, datatype: DataType.Double, value: 4.5, timestamp: t }],
      }),
    );
    await until(
      'the DBIRTH value',
      () => latest(`${group}/edge-07/press-5/Pressure`),
      (r) => r?.value === 4.5,
    );
    await edge.publishAsync(`spBv1.0/${group}/DDEATH/edge-07/press-5`, buildDeath({ seq: 2, timestamp: t + 1000 }));
    // (The first test's NDEATH already raised STALE for every sensor of the node, this one's included.)
    const fromDdeath = async () =>
      (
        await hub.gql(admin, '{ alerts(filter: { type: [STALE] }) { nodes { sensor { id } machine { id } message } } }')
      ).body.data.alerts.nodes.filter((a: any) => a.message.startsWith('DDEATH'));
    const stale = await until('the DDEATH alert', fromDdeath, (n: any[]) => n.length >= 1);
    // Published after the DDEATH on the same connection: once its value is stored, the DDEATH was handled.
    await edge.publishAsync(
      `spBv1.0/${group}/DBIRTH/edge-07/press-3`,
      buildBirth({
        seq: 3,
        timestamp: t + 2000,
        metrics: [{ name: 'Temperature', alias: 10, datatype: DataType.Float, value: 70.5, timestamp: t + 2000 }],
      }),
    );
    await until(
      'the later DBIRTH',
      () => latest(`${group}/edge-07/press-3/Temperature`),
      (r) => r?.value === 70.5,
    );
    expect(await fromDdeath()).toEqual(stale);
    expect(stale).toEqual([
      { sensor: { id: `${group}/edge-07/press-5/Pressure` }, machine: { id: 'M-102' }, message: expect.any(String) },
    ]);
  });

  it('turns a payload that is not protobuf into a dead letter and keeps going', async () => {
    await edge.publishAsync(`spBv1.0/${group}/DDATA/edge-07/press-3`, Buffer.from('this is not protobuf'));
    const dl = await until(
      'the dead letter',
      async () =>
        (await hub.gql(admin, '{ deadLetters(filter: { source: [SPARKPLUG] }) { nodes { reason topic } } }')).body.data
          .deadLetters.nodes,
      (n: any[]) => n.some((d) => d.topic?.includes(group)),
    );
    expect(dl.find((d: any) => d.topic?.includes(group)).reason).toMatch(/MALFORMED_PAYLOAD|SPARKPLUG_PROTOCOL/);
  });
});

describe('HTTP polling', () => {
  it('stores polled readings and reports each endpoint’s last success and failure through the gateway', async () => {
    await until(
      'a polled reading',
      () => latest('ENV-01'),
      (r) => r?.source === 'HTTP',
    );
    const ok = await until(
      'a status row',
      async () =>
        (await hub.gql(admin, '{ httpEndpoints { name url lastSuccessAt consecutiveFailures readings } }')).body.data
          .httpEndpoints,
      (e: any[]) => e.length === 1 && e[0].readings > 0,
    );
    expect(ok[0]).toMatchObject({ name: 'env', consecutiveFailures: 0 });
    sensor.setMode('/env', '500');
    const failing = await until(
      'a failure',
      async () =>
        (await hub.gql(admin, '{ httpEndpoints { consecutiveFailures lastErrorCode lastFailureAt } }')).body.data
          .httpEndpoints[0],
      (e: any) => e.consecutiveFailures > 0,
    );
    expect(failing.lastErrorCode).toBe('UPSTREAM_UNAVAILABLE');
    // A line-scoped token is not shown plant-level endpoint configuration.
    const scoped = await hub.token({ role: 'viewer', lines: ['LINE-1'] });
    expect((await hub.gql(scoped, '{ httpEndpoints { name } }')).body.data.httpEndpoints).toEqual([]);
  });
});
