import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest/service.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { record, wsClient } from '../helpers/ws-client.ts';

/**
 * Federated subscriptions end to end, against the real Mosquitto and Postgres: MQTT → ingest pipeline →
 * live channel → iot/quality subgraphs (graphql-ws) → gateway (plan, dedupe, batched _entities) → graphql-ws
 * clients. A private live-channel prefix keeps parallel test files apart on the shared broker.
 */
const run = randomBytes(4).toString('hex');
const prefix = `oee-hub-t${run}/live`;
let hub: TestHub;
let ingest: RunningIngest;
let publisher: mqtt.MqttClient;
let admin: string;
let seq = 0;

/** Publishes one reading of `sensorId` at a unique time (so nothing is a duplicate), returns its value. */
async function publish(sensorId: string, value = 20 + (seq % 50)): Promise<number> {
  const ts = new Date(Date.now() - 3_600_000 + seq++);
  await publisher.publishAsync(`t/${run}/s/${sensorId}`, JSON.stringify({ value, ts: ts.toISOString() }), { qos: 1 });
  return value;
}

export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url.replace(/\/graphql$/, '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : 0;
}

beforeAll(async () => {
  hub = await startTestHub({ seed: true, mqtt: { url: inject('mqttUrl'), liveTopicPrefix: prefix } });
  admin = await hub.token({ role: 'admin' });
  const iot = IotConfigSchema.parse({
    mqtt: { clientId: `hub-sub-${run}`, topics: [{ pattern: `t/${run}/s/+`, mapping: { sensorId: { topicSegment: 3 }, values: [{ path: 'value' }], timestamp: { path: 'ts' } } }] },
    live: { topicPrefix: prefix },
    pipeline: { batchMaxDelayMs: 5 },
  });
  ingest = await startIngest({ db: hub.db, databaseUrl: hub.databaseUrl, mqttUrl: inject('mqttUrl'), iot, registry: new Registry() });
  publisher = await mqtt.connectAsync(inject('mqttUrl'), { clientId: `pub-${run}` });
}, 60_000);

afterAll(async () => {
  await publisher?.endAsync();
  await ingest?.stop();
  await hub?.close();
});

const READINGS = `subscription($f: SensorReadingFilter) {
  sensorReadings(filter: $f) {
    value ts source
    sensor { id type unit }
    machine { id name line { id name currentWorkOrder { number product { name } } } openAlerts { type } }
    workOrder { number }
  }
}`;

describe('sensorReadings through the gateway', () => {
  it('delivers each reading with fields of production, quality and iot resolved', async () => {
    const client = wsClient(hub.url, admin);
    const sub = record(client, READINGS, { f: { machineIds: ['M-201'] } });
    await until('upstream subscribed', () => metric(hub.subgraphUrls.iot, 'hub_live_subscriptions'), (n) => n >= 1);
    const value = await publish('M-201-TEMP', 61.5);
    await until('an event', async () => sub.events.length, (n) => n >= 1);
    const e = sub.events[0];
    expect(e.errors).toBeUndefined();
    expect(e.data.sensorReadings).toMatchObject({
      value,
      source: 'MQTT',
      sensor: { id: 'M-201-TEMP', type: 'temperature' },
      machine: { id: 'M-201', name: 'CNC mill 201', line: { id: 'LINE-2', name: 'Machining line' } },
    });
    expect(Array.isArray(e.data.sensorReadings.machine.openAlerts)).toBe(true);
    expect(e.data.sensorReadings.machine.line.currentWorkOrder.number).toMatch(/^WO-/);
    expect(e.data.sensorReadings.workOrder.number).toMatch(/^WO-/);
    sub.dispose();
    await client.dispose();
  });
});
