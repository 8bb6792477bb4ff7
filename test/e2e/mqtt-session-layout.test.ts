import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest.ts';
import { sparkplugClientId } from '../../lib/telemetry/sources/sparkplug.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * Upgrading from the layout where one persistent session took JSON topics, Sparkplug and the live channel's
 * announcements: the JSON session, resumed under the same client id, gives up what the Sparkplug host's own session
 * now takes, so it stops receiving (and skipping) Sparkplug traffic.
 */
const run = randomBytes(4).toString('hex');
const group = `GL${run}`;
const clientId = `hub-layout-${run}`;
let hub: TestHub;
let ingest: RunningIngest;
let pub: mqtt.MqttClient;

const iotConfig = (topics: boolean) =>
  IotConfigSchema.parse({
    mqtt: {
      clientId,
      topics: topics
        ? [{ pattern: `tl/${run}/+`, mapping: { sensorId: { topicSegment: 2 }, values: [{ path: 'v' }] } }]
        : [],
      sparkplug: { enabled: true, groups: [group], rebirthIntervalSeconds: 0 },
    },
    pipeline: { batchMaxDelayMs: 10 },
  });

beforeAll(async () => {
  hub = await startTestHub();
  // The old layout's session: JSON and Sparkplug filters in one, left behind by the previous version.
  const old = await mqtt.connectAsync(inject('mqttUrl'), {
    clientId,
    clean: false,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 600 },
  });
  await old.subscribeAsync([`tl/${run}/+`, `spBv1.0/${group}/#`], { qos: 1 });
  await old.endAsync();
  ingest = await startIngest({
    db: hub.db,
    databaseUrl: hub.databaseUrl,
    mqttUrl: inject('mqttUrl'),
    iot: iotConfig(true),
    registry: new Registry(),
  });
  pub = await mqtt.connectAsync(inject('mqttUrl'), { clientId: `pub-layout-${run}` });
});
afterAll(async () => {
  await pub?.endAsync();
  await ingest?.stop();
  await hub?.close();
});

const received = (name: string) => ingest.status().find((s) => s.name === name)?.counters.received ?? 0;

describe('MQTT sessions after the split', () => {
  it('the resumed JSON session drops the Sparkplug filter it held; the host gets those messages', async () => {
    await pub.publishAsync(`tl/${run}/S-1`, JSON.stringify({ v: 1 }), { qos: 1 });
    await until(
      'the first JSON message',
      async () => received('mqtt'),
      (n) => n >= 1,
      10_000,
    );
    await pub.publishAsync(`spBv1.0/${group}/NDATA/edge-1`, Buffer.from([0x08, 0x01]), { qos: 1 });
    await until(
      'the Sparkplug message at the host',
      async () => received('sparkplug'),
      (n) => n >= 1,
      10_000,
    );
    // Published after the Sparkplug one on the same connection: the broker delivers it after, to each session.
    await pub.publishAsync(`tl/${run}/S-1`, JSON.stringify({ v: 2 }), { qos: 1 });
    await until(
      'the second JSON message',
      async () => received('mqtt'),
      (n) => n >= 2,
      10_000,
    );
    expect(received('mqtt')).toBe(2);
  });

  it('a hub with Sparkplug alone keeps the one session id it had', () => {
    expect(sparkplugClientId(iotConfig(false).mqtt!)).toBe(clientId);
    expect(sparkplugClientId(iotConfig(true).mqtt!)).toBe(`${clientId}-sparkplug`);
  });
});
