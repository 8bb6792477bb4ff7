import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { extraGateway } from '../helpers/live-hub.ts';
import { until } from '../helpers/until.ts';
import { record } from '../helpers/ws-client.ts';

/**
 * A gateway that stops tells its WebSocket clients so (docs/subscriptions.md, "Restarts"): every subscription
 * completes, then the socket closes with 1001 Going Away (RFC 6455 §7.4.1), which a client library takes as "come
 * back elsewhere" rather than an error of its own.
 */
let hub: TestHub;
beforeAll(async () => {
  const prefix = `oee-hub-t${randomBytes(4).toString('hex')}/live`;
  hub = await startTestHub({ mqtt: { url: inject('mqttUrl'), liveTopicPrefix: prefix } });
}, 60_000);
afterAll(() => hub?.close());

describe('gateway shutdown', () => {
  it('completes each subscription, then closes the graphql-ws connection with 1001', async () => {
    const gw = await extraGateway(hub);
    const closed: { code: number; reason: string }[] = [];
    const client = createClient({
      url: gw.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${await hub.token({ role: 'admin' })}` },
      retryAttempts: 0,
      on: {
        closed: (e) => {
          const { code, reason } = e as { code: number; reason: string };
          closed.push({ code, reason });
        },
      },
    });
    let stopped = false;
    try {
      const sub = record(client, `subscription { sensorReadings { value } }`);
      await until(
        'the subscription reached the subgraph',
        async () => (await fetch(hub.subgraphUrls.iot!.replace(/\/graphql$/, '/metrics'))).text(),
        (m) => /^hub_live_subscriptions\{[^}]*\} 1$/m.test(m),
      );
      await gw.close();
      stopped = true;
      await until(
        'the connection closed',
        async () => closed.length,
        (n) => n === 1,
      );
      expect(closed).toEqual([{ code: 1001, reason: 'Going away' }]);
      expect(sub.completed).toBe(true);
      expect(sub.errors).toBeUndefined();
    } finally {
      await client.dispose();
      if (!stopped) await gw.close();
    }
  });
});
