import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { record, wsClient } from '../helpers/ws-client.ts';

/**
 * What docs/telemetry.md promises of the live channel: who listens is counted (hub_live_listeners), `publish: always`
 * publishes with nobody announced, the subgraphs keep a kind announced 5 s after its last subscription, and dead
 * letters are counted by reason. Each ingest here has a live prefix of its own, so no other test's listeners count.
 */
const run = randomBytes(4).toString('hex');
const url = inject('mqttUrl');
let hub: TestHub;
const ingests: RunningIngest[] = [];
let client: mqtt.MqttClient;

const iot = (prefix: string, publish: 'listened' | 'always') =>
  IotConfigSchema.parse({
    mqtt: {
      clientId: `hub-live-${publish}-${run}`,
      topics: [
        {
          pattern: `lc/${run}/${publish}/+`,
          mapping: {
            sensorId: { topicSegment: 3 },
            values: [{ path: 'v' }],
            timestamp: { path: 't', format: 'epoch_ms' },
          },
        },
      ],
    },
    live: { topicPrefix: prefix, publish },
    pipeline: { batchMaxDelayMs: 10 },
  });

async function ingest(prefix: string, publish: 'listened' | 'always') {
  const registry = new Registry();
  const i = await startIngest({
    db: hub.db,
    databaseUrl: hub.databaseUrl,
    mqttUrl: url,
    iot: iot(prefix, publish),
    registry,
  });
  ingests.push(i);
  return { registry, ingest: i };
}

const metric = async (r: Registry, name: string, labels: Record<string, string> = {}) =>
  (await r.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    ?.value ?? 0;

beforeAll(async () => {
  hub = await startTestHub({ seed: true, mqtt: { url, liveTopicPrefix: `lc-hub-${run}` } });
  client = await mqtt.connectAsync(url, { clientId: `lc-${run}` });
});
afterAll(async () => {
  await client?.endAsync();
  for (const i of ingests) await i.stop();
  await hub?.close();
});

describe('the live channel', () => {
  it('hub_live_listeners counts the consumers announced on its own prefix', async () => {
    const prefix = `lc-l-${run}`;
    const { registry } = await ingest(prefix, 'listened');
    expect(await metric(registry, 'hub_live_listeners')).toBe(0);
    const topic = `${prefix}/listeners/dash-${run}`;
    await client.publishAsync(topic, 'readings', { qos: 1, retain: true });
    await until(
      'one listener',
      () => metric(registry, 'hub_live_listeners'),
      (n) => n === 1,
    );
    await client.publishAsync(`${prefix}/listeners/other-${run}`, 'alerts', { qos: 1, retain: true });
    await until(
      'two listeners',
      () => metric(registry, 'hub_live_listeners'),
      (n) => n === 2,
    );
    for (const t of [topic, `${prefix}/listeners/other-${run}`]) {
      await client.publishAsync(t, '', { qos: 1, retain: true });
    }
    await until(
      'none again',
      () => metric(registry, 'hub_live_listeners'),
      (n) => n === 0,
    );
  });

  it('publish: always sends committed readings with nobody announced', async () => {
    const prefix = `lc-a-${run}`;
    const { registry } = await ingest(prefix, 'always');
    // Only listens: announces nothing.
    const watcher = await mqtt.connectAsync(url, { clientId: `lc-w-${run}` });
    const seen: any[] = [];
    watcher.on('message', (_t, p) => seen.push(...JSON.parse(p.toString())));
    await watcher.subscribeAsync(`${prefix}/readings/+`);
    // An hour back, half past a second: never a whole minute, where the demo seed stored this sensor's readings.
    const ts = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000 + 500);
    await client.publishAsync(`lc/${run}/always/M-102-TEMP`, JSON.stringify({ v: 42.5, t: ts.getTime() }), { qos: 1 });
    await until(
      'the live reading',
      async () => seen,
      (s) => s.some((r) => r.sensorId === 'M-102-TEMP'),
    );
    expect(seen.find((r) => r.sensorId === 'M-102-TEMP')).toMatchObject({
      machineId: 'M-102',
      value: 42.5,
      ts: ts.toISOString(),
    });
    expect(registry.getSingleMetric('hub_live_listeners')).toBeUndefined(); // nothing to count when always
    await watcher.endAsync();
  });

  it('counts dead letters by source and reason in hub_ingest_dead_letters_total', async () => {
    const r = new Registry();
    const i = await startIngest({
      db: hub.db,
      databaseUrl: hub.databaseUrl,
      mqttUrl: url,
      iot: IotConfigSchema.parse({
        mqtt: {
          clientId: `hub-live-dl-${run}`,
          topics: [
            {
              pattern: `lc/${run}/dl/+`,
              mapping: {
                sensorId: { topicSegment: 3 },
                values: [{ path: 'v' }],
                timestamp: { path: 't', format: 'epoch_ms' },
              },
            },
          ],
        },
        live: { enabled: false },
        pipeline: { batchMaxDelayMs: 10 },
      }),
      registry: r,
    });
    ingests.push(i);
    const t = Date.now() - 3_600_000;
    for (let k = 0; k < 3; k++) await client.publishAsync(`lc/${run}/dl/M-102-TEMP`, '{not json', { qos: 1 });
    await client.publishAsync(`lc/${run}/dl/NO-SUCH-SENSOR`, JSON.stringify({ v: 1, t }), { qos: 1 });
    await client.publishAsync(`lc/${run}/dl/M-102-TEMP`, JSON.stringify({ v: 1, t }), { qos: 1 });
    await until(
      'the good one stored',
      () => metric(r, 'hub_ingest_readings_total', { outcome: 'stored' }),
      (n) => n >= 1,
    );
    expect(await metric(r, 'hub_ingest_dead_letters_total', { source: 'MQTT', reason: 'MALFORMED_PAYLOAD' })).toBe(3);
    expect(await metric(r, 'hub_ingest_dead_letters_total', { source: 'MQTT', reason: 'UNKNOWN_SENSOR' })).toBe(1);
  });

  it('a subgraph keeps "readings" announced for 5 s after the last subscription ends, then withdraws it', async () => {
    const prefix = `lc-hub-${run}`;
    const watcher = await mqtt.connectAsync(url, { clientId: `lc-a-w-${run}` });
    const announcements: { topic: string; kinds: string; at: number }[] = [];
    watcher.on('message', (topic, p) => announcements.push({ topic, kinds: p.toString(), at: Date.now() }));
    await watcher.subscribeAsync(`${prefix}/listeners/+`, { qos: 1 });
    const reads = (a: { kinds: string }) => a.kinds.split(',').includes('readings');
    const ws = wsClient(hub.url, await hub.token({ role: 'admin' }));
    const q = 'subscription { sensorReadings(filter: { lineIds: ["LINE-1"] }) { value } }';
    let sub = record(ws, q);
    await until(
      'the announcement',
      async () => announcements.filter(reads),
      (a) => a.length > 0,
    );
    const announcedBy = announcements.find(reads)!.topic;
    const withdrawals = () => announcements.filter((a) => a.topic === announcedBy && !reads(a));
    // A dashboard reloading: gone for a second, then back. Still announced throughout.
    sub.dispose();
    await new Promise((r) => setTimeout(r, 1000));
    sub = record(ws, q);
    await new Promise((r) => setTimeout(r, 500));
    sub.dispose();
    const ended = Date.now();
    const [w] = await until(
      'the withdrawal',
      async () => withdrawals(),
      (a) => a.length > 0,
      15_000,
    );
    // The one withdrawal came a full linger after the last subscription ended, none after the first one ended.
    expect(withdrawals()).toHaveLength(1);
    expect(w!.at - ended).toBeGreaterThanOrEqual(4500);
    await ws.dispose();
    await watcher.endAsync();
  });
});
