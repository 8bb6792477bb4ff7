import type { Registry } from 'prom-client';
import type { IotConfig } from '../../config/iot.ts';
import type { Db } from '../../db/index.ts';
import { log } from '../../log.ts';
import { TelemetryCaches } from '../caches.ts';
import { MqttIngestClient, type InboundMessage } from '../mqtt/ingest-client.ts';
import { TelemetryPipeline } from '../pipeline.ts';
import type { DeadLetter, IncomingReading, SourceBatch } from '../types.ts';
import { createJsonDecoder } from './mqtt-json.ts';

export interface IngestOptions {
  db: Db;
  databaseUrl: string;
  mqttUrl?: string;
  iot: IotConfig;
  registry: Registry;
}

export interface RunningIngest {
  pipeline: TelemetryPipeline;
  mqtt?: MqttIngestClient;
  /** For /readyz: the broker connection is up (true when no MQTT source is configured). */
  ready(): boolean;
  stop(): Promise<void>;
}

/**
 * Live ingest: the sources configured in iot.yml feeding the one pipeline. Several of these may run at once
 * (processes or machines) with one `sharedGroup`: the broker splits the messages between them.
 */
export async function startIngest(o: IngestOptions): Promise<RunningIngest> {
  const caches = new TelemetryCaches(o.db, o.databaseUrl);
  await caches.start();
  const p = o.iot.pipeline;
  const pipeline = new TelemetryPipeline(o.db, caches, o.registry, {
    batchMaxRows: p.batchMaxRows,
    batchMaxDelayMs: p.batchMaxDelayMs,
    maxQueuedRows: p.maxQueuedRows,
    duplicateWindowMs: p.duplicateWindowMs,
    degradedQuality: 50,
    commitAttempts: 5,
  });

  let closing = false;
  let online = true;
  const m = o.iot.mqtt;
  const url = m?.url ?? o.mqttUrl;
  let mqtt: MqttIngestClient | undefined;
  if (m?.enabled && url && m.topics.length) {
    const decodeJson = createJsonDecoder(m.topics, { maxPayloadBytes: m.maxPayloadBytes, maxFutureMs: p.maxFutureSeconds * 1000 });
    const share = (f: string) => (m.sharedGroup ? `$share/${m.sharedGroup}/${f}` : f);
    const client: MqttIngestClient = new MqttIngestClient(
      {
        url,
        clientId: m.clientId,
        username: m.username,
        password: m.password,
        subscriptions: m.topics.map((t) => ({ filter: share(t.pattern), qos: 1 as const })),
        sessionExpirySeconds: m.sessionExpirySeconds,
        receiveMaximum: m.receiveMaximum,
      },
      (msgs: InboundMessage[]) => {
        // While stopping, take nothing new: unacknowledged, these come again in the next session.
        if (closing) return;
        const receivedAt = new Date();
        const out: { readings: IncomingReading[]; deadLetters: DeadLetter[] } = { readings: [], deadLetters: [] };
        for (const msg of msgs) decodeJson(msg.topic, msg.payload, receivedAt, out);
        const batch: SourceBatch = {
          source: 'MQTT',
          ...out,
          // PUBACK only now: the rows are committed. The broker's in-flight limit (receiveMaximum) is the
          // backpressure, so the pipeline's own wait is not needed here.
          ack: () => client.ack(msgs),
          // Not committed: drop the connection so the broker redelivers everything unacknowledged.
          fail: (err) => client.reconnect(`commit failed: ${err.message}`),
        };
        void pipeline.submit(batch);
      },
    );
    client.on('error', (err: Error) => log.error({ err: err.message }, 'mqtt ingest error'));
    client.on('offline', (err: Error) => {
      online = false;
      log.warn({ err: err?.message }, 'mqtt ingest offline; reconnecting');
    });
    client.on('connect', () => (online = true));
    const { sessionPresent } = await client.start();
    log.info({ url, clientId: m.clientId, sessionPresent, topics: m.topics.map((t) => t.pattern) }, 'mqtt ingest connected');
    mqtt = client;
  }

  return {
    pipeline,
    mqtt,
    ready: () => online,
    async stop() {
      closing = true;
      // Commit what is in hand so its acks go out, then close the session. Messages arriving meanwhile are
      // refused by the stopped pipeline and stay unacknowledged: the broker delivers them on the next start.
      await pipeline.stop();
      await mqtt?.stop();
      await caches.stop();
    },
  };
}
