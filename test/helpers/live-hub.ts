import { inject } from 'vitest';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { startGateway } from '../../gateway/server.ts';
import { createUserTokenVerifier } from '../../lib/auth/tokens.ts';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest.ts';
import { INTERNAL_SECRET, JWT_SECRET, startTestHub, type TestHub } from './hub.ts';

export interface LiveTestHub {
  hub: TestHub;
  ingest: RunningIngest;
  /** A plain MQTT client on the broker (to publish what a test needs besides readings). */
  publisher: mqtt.MqttClient;
  /** Publishes one reading of `sensorId` at a time of its own (an hour back, one ms apart: never a duplicate). */
  publish: (sensorId: string, value: number) => Promise<void>;
  close: () => Promise<void>;
}

/**
 * The demo hub with live subscriptions wired the real way: MQTT JSON on `t/<run>/s/<sensor>` → ingest → live channel
 * on a prefix of the run's own (so parallel test files on the shared broker stay apart) → subgraphs → gateway.
 */
export async function startLiveTestHub(run: string, prefix: string): Promise<LiveTestHub> {
  const url = inject('mqttUrl');
  const hub = await startTestHub({ seed: true, mqtt: { url, liveTopicPrefix: prefix } });
  const iot = IotConfigSchema.parse({
    mqtt: {
      clientId: `hub-live-${run}`,
      topics: [
        {
          pattern: `t/${run}/s/+`,
          mapping: { sensorId: { topicSegment: 3 }, values: [{ path: 'value' }], timestamp: { path: 'ts' } },
        },
      ],
    },
    live: { topicPrefix: prefix },
    pipeline: { batchMaxDelayMs: 5 },
  });
  const ingest = await startIngest({
    db: hub.db,
    databaseUrl: hub.databaseUrl,
    mqttUrl: url,
    iot,
    registry: new Registry(),
  });
  const publisher = await mqtt.connectAsync(url, { clientId: `pub-${run}` });
  let seq = 0;
  return {
    hub,
    ingest,
    publisher,
    publish: async (sensorId, value) => {
      const ts = new Date(Date.now() - 3_600_000 + seq++).toISOString();
      await publisher.publishAsync(`t/${run}/s/${sensorId}`, JSON.stringify({ value, ts }), { qos: 1 });
    },
    close: async () => {
      await publisher.endAsync();
      await ingest.stop();
      await hub.close();
    },
  };
}

/** Another gateway in this process over the test hub's subgraphs (a second instance, or one set up differently). */
export function extraGateway(hub: TestHub, extra: Partial<Parameters<typeof startGateway>[0]> = {}) {
  return startGateway({
    supergraphSdl: readSupergraph(),
    subgraphUrls: hub.subgraphUrls,
    verifyUser: createUserTokenVerifier({ secret: JWT_SECRET }),
    internalSecret: INTERNAL_SECRET,
    host: '127.0.0.1',
    port: 0,
    ...extra,
  });
}
