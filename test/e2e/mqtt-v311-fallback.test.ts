import { describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startEmbeddedBroker } from '../../lib/embedded/mqtt.ts';
import { MqttIngestClient, type InboundMessage } from '../../lib/mqtt/ingest-client.ts';

describe('a broker that speaks only MQTT 3.1.1 (the embedded aedes)', () => {
  it('falls back from 5 to 3.1.1, receives QoS 1 messages and acknowledges them', async () => {
    const broker = await startEmbeddedBroker();
    const got: InboundMessage[] = [];
    const client = new MqttIngestClient(
      { url: broker.url, clientId: 'fallback-test', subscriptions: [{ filter: 'f/#', qos: 1 }] },
      (msgs) => {
        got.push(...msgs);
        client.ack(msgs);
      },
    );
    const downgraded = new Promise((r) => client.once('downgraded', r));
    const subscribed = new Promise((r) => client.once('subscribed', r));
    await client.start();
    expect(await downgraded).toEqual({ protocolVersion: 4 });
    await subscribed;
    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    for (let i = 0; i < 50; i++) await pub.publishAsync(`f/${i}`, `m${i}`, { qos: 1 });
    for (let i = 0; i < 100 && got.length < 50; i++) await new Promise((r) => setTimeout(r, 50));
    expect(got.map((m) => m.payload.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(client.stats.acked).toBe(50);
    await pub.endAsync();
    await client.stop();
    await broker.stop();
  });
});
