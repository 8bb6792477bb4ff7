import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { LiveFeed } from '../../lib/subgraph/live-feed.ts';
import { listenerTopic } from '../../lib/telemetry/live.ts';
import { until } from '../helpers/until.ts';
import { startEmbeddedBroker } from '../../lib/embedded/mqtt.ts';

/** The subgraphs' view of the live channel announces itself to the ingest, against the real Mosquitto. */
const run = randomBytes(4).toString('hex');
const prefix = `t-${run}/live`;
const feedId = `feed-${run}`;
const announcement = listenerTopic(prefix, feedId);
let watcher: mqtt.MqttClient;
let feed: LiveFeed;
const registry = new Registry();
/** hub_live_subscriptions for readings: set once the feed has announced itself and subscribed. */
const active = async () =>
  (await registry.getSingleMetric('hub_live_subscriptions')!.get()).values.find((v) => v.labels.kind === 'readings')
    ?.value ?? 0;
/** What the announcement topic said, in order. */
const said: string[] = [];

beforeAll(async () => {
  watcher = await mqtt.connectAsync(inject('mqttUrl'), { clientId: `watch-${run}` });
  watcher.on('message', (topic, payload) => topic === announcement && said.push(payload.toString()));
  await watcher.subscribeAsync(listenerTopic(prefix, '+'), { qos: 1 });
  feed = new LiveFeed(inject('mqttUrl'), prefix, registry, feedId);
});
afterAll(async () => {
  await feed?.close();
  await watcher?.endAsync();
});

const last = async () => said.at(-1);

describe('LiveFeed announcements', () => {
  it(`announces while it has subscriptions, survives a subscription ending as another starts, \
and clears at the end`, async () => {
    const a = feed.subscribe('readings', { match: () => true });
    await a.return!(); // ends at once...
    const b = feed.subscribe('readings', { match: () => true }); // ...and another starts: three syncs queued
    await until('announced', last, (s) => s === 'readings');
    await until('counted once subscribed', active, (n) => n === 1);
    // Subscribed to the topic: an event reaches b. Published until it arrives: the count is the feed's own, and its
    // topic SUBSCRIBE may still be on its way to the broker (a QoS 0 message before it is not queued for it).
    const next = b.next();
    const publishing = setInterval(
      () =>
        void watcher.publish(
          `${prefix}/readings/LINE-1`,
          JSON.stringify([{ sensorId: 'S-1', machineId: 'M-1', value: 1 }]),
        ),
      100,
    );
    try {
      expect((await next).value).toMatchObject({ sensorId: 'S-1', lineId: 'LINE-1' });
    } finally {
      clearInterval(publishing);
    }

    // Its will, published late for an old connection, does not silence it while it has listeners.
    await watcher.publishAsync(announcement, '', { qos: 1, retain: true });
    await until(
      'announced again',
      async () => said.slice(-2),
      (s) => s[0] === '' && s[1] === 'readings',
    );

    await b.return!();
    await until('cleared', last, (s) => s === '');
  });

  it(`falls back to MQTT 3.1.1 where the broker refuses 5 (the embedded aedes broker), \
and still announces and serves`, async () => {
    const broker = await startEmbeddedBroker();
    const onAedes = new LiveFeed(broker.url, prefix, new Registry(), `${feedId}-aedes`);
    const probe = await mqtt.connectAsync(broker.url, { clientId: `probe-${run}` });
    try {
      const heard: string[] = [];
      probe.on('message', (_t, p) => heard.push(p.toString()));
      await probe.subscribeAsync(listenerTopic(prefix, `${feedId}-aedes`));
      const sub = onAedes.subscribe('readings', { match: () => true });
      await until(
        'announced on aedes',
        async () => heard.at(-1),
        (s) => s === 'readings',
      );
      const next = sub.next();
      // Retried until it arrives: the feed's topic SUBSCRIBE may still be on its way (QoS 0 is not queued).
      const publishing = setInterval(
        () => void probe.publish(`${prefix}/readings/LINE-9`, JSON.stringify([{ sensorId: 'S-9' }])),
        100,
      );
      try {
        expect((await next).value).toMatchObject({ sensorId: 'S-9', lineId: 'LINE-9' });
      } finally {
        clearInterval(publishing);
      }
      await sub.return!();
    } finally {
      await onAedes.close();
      await probe.endAsync();
      await broker.stop();
    }
  });
});
