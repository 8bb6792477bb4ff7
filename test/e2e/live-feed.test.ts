import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { LiveFeed } from '../../lib/subscriptions/live-feed.ts';
import { listenerTopic } from '../../lib/telemetry/live.ts';
import { until } from '../helpers/until.ts';

/** The subgraphs' view of the live channel announces itself to the ingest, against the real Mosquitto. */
const run = randomBytes(4).toString('hex');
const prefix = `t-${run}/live`;
const feedId = `feed-${run}`;
const announcement = listenerTopic(prefix, feedId);
let watcher: mqtt.MqttClient;
let feed: LiveFeed;
/** What the announcement topic said, in order. */
const said: string[] = [];

beforeAll(async () => {
  watcher = await mqtt.connectAsync(inject('mqttUrl'), { clientId: `watch-${run}` });
  watcher.on('message', (topic, payload) => topic === announcement && said.push(payload.toString()));
  await watcher.subscribeAsync(listenerTopic(prefix, '+'), { qos: 1 });
  feed = new LiveFeed(inject('mqttUrl'), prefix, new Registry(), feedId);
});
afterAll(async () => {
  await feed?.close();
  await watcher?.endAsync();
});

const last = async () => said.at(-1);

describe('LiveFeed announcements', () => {
  it('announces while it has subscriptions, survives a subscription ending as another starts, and clears at the end', async () => {
    const a = feed.subscribe('readings', { match: () => true });
    await a.return!(); // ends before the first sync is done...
    const b = feed.subscribe('readings', { match: () => true }); // ...while another starts
    await until('announced', last, (s) => s === 'readings');
    // Still subscribed to the topic: an event reaches b.
    const next = b.next();
    await watcher.publishAsync(`${prefix}/readings/LINE-1`, JSON.stringify([{ sensorId: 'S-1', machineId: 'M-1', value: 1 }]));
    expect((await next).value).toMatchObject({ sensorId: 'S-1', lineId: 'LINE-1' });

    // Its will, published late for an old connection, does not silence it while it has listeners.
    await watcher.publishAsync(announcement, '', { qos: 1, retain: true });
    await until('announced again', async () => said.slice(-2), (s) => s[0] === '' && s[1] === 'readings');

    await b.return!();
    await until('cleared', last, (s) => s === '');
  });
});
