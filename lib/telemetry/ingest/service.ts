import { Gauge, type Registry } from 'prom-client';
import type { IotConfig } from '../../config/iot.ts';
import type { Db } from '../../db/index.ts';
import { log } from '../../log.ts';
import { TelemetryCaches } from '../caches.ts';
import { MqttIngestClient, type InboundMessage } from '../mqtt/ingest-client.ts';
import { TelemetryPipeline } from '../pipeline.ts';
import type { DeadLetter, IncomingReading } from '../types.ts';
import { LiveAudience } from '../live.ts';
import { createJsonDecoder } from './mqtt-json.ts';
import { createSparkplugDecoder } from './sparkplug.ts';
import { saveEndpointStatus } from './http-status.repo.ts';
import { HttpPoller } from '../http/poller.ts';
import { hostname } from 'node:os';

export interface IngestOptions {
  db: Db;
  databaseUrl: string;
  mqttUrl?: string;
  iot: IotConfig;
  registry: Registry;
  /** Names this worker in the HTTP endpoint status (default: the host name). */
  worker?: string;
  statusIntervalMs?: number;
}

export interface RunningIngest {
  pipeline: TelemetryPipeline;
  mqtt?: MqttIngestClient;
  /** For /readyz: the broker connection is up and work in hand is committing (true when no MQTT source is configured). */
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
    commitConcurrency: p.commitConcurrency,
  });

  let closing = false;
  let online = true;
  const m = o.iot.mqtt;
  const url = m?.url ?? o.mqttUrl;
  let mqtt: MqttIngestClient | undefined;
  const sp = m?.sparkplug.enabled ? createSparkplugDecoder(m.sparkplug) : undefined;
  if (m?.enabled && url && (m.topics.length || sp)) {
    const decodeJson = createJsonDecoder(m.topics, {
      maxPayloadBytes: m.maxPayloadBytes,
      maxFutureMs: p.maxFutureSeconds * 1000,
    });
    const share = (f: string) => (m.sharedGroup ? `$share/${m.sharedGroup}/${f}` : f);
    const subscriptions: { filter: string; qos: 0 | 1 }[] = m.topics.map((t) => ({ filter: share(t.pattern), qos: 1 }));
    // Never shared: one worker must see every message of an edge node to follow its births, aliases and seq.
    if (sp) for (const g of m.sparkplug.groups) subscriptions.push({ filter: `spBv1.0/${g}/#`, qos: 1 });
    // Who reads the live channel (retained announcements, sent again at every SUBSCRIBE, so after a restart too).
    const audience =
      o.iot.live.enabled && o.iot.live.publish === 'listened' ? new LiveAudience(o.iot.live.topicPrefix) : undefined;
    if (audience) {
      subscriptions.push({ filter: audience.filter, qos: 0 });
      // 0 while a dashboard is open means its consumer does not announce itself (see lib/telemetry/live.ts).
      new Gauge({
        name: 'hub_live_listeners',
        help: 'Live-channel consumers announced to this ingest (0: live publishing is off)',
        registers: [o.registry],
        collect() {
          this.set(audience.size);
        },
      });
    }
    const client: MqttIngestClient = new MqttIngestClient(
      {
        url,
        clientId: m.clientId,
        username: m.username,
        password: m.password,
        subscriptions,
        sessionExpirySeconds: m.sessionExpirySeconds,
        receiveMaximum: m.receiveMaximum,
      },
      (msgs: InboundMessage[]) => {
        // While stopping, take nothing new: unacknowledged, these come again in the next session.
        if (closing) return;
        const receivedAt = new Date();
        const livePrefix = `${o.iot.live.topicPrefix}/`;
        const json = { readings: [] as IncomingReading[], deadLetters: [] as DeadLetter[] };
        const spark = { readings: [] as IncomingReading[], deadLetters: [] as DeadLetter[] };
        for (const msg of msgs) {
          // The hub's own live channel is output, never input (a '#' pattern would otherwise loop it back);
          // only the listeners' announcements there are for us.
          if (msg.topic.startsWith(livePrefix)) {
            audience?.update(msg.topic, msg.payload);
            continue;
          }
          if (sp && msg.topic.startsWith('spBv1.0/'))
            onSparkplug(sp.decode(msg.topic, msg.payload, receivedAt, spark), receivedAt);
          else decodeJson(msg.topic, msg.payload, receivedAt, json);
        }
        const hasSpark = spark.readings.length > 0 || spark.deadLetters.length > 0;
        const hasJson = json.readings.length > 0 || json.deadLetters.length > 0 || !hasSpark;
        // The chunk's PUBACKs go out once every batch made of it has committed: the two may land in different
        // pipeline batches, which commit concurrently and may finish in either order. (The client sends PUBACKs in
        // arrival order whatever the order of these calls.)
        let uncommitted = Number(hasJson) + Number(hasSpark);
        const ack = () => --uncommitted === 0 && client.ack(msgs);
        // Not committed: drop the connection so the broker redelivers everything unacknowledged.
        const fail = (err: Error) => client.reconnect(`commit failed: ${err.message}`);
        // The broker's in-flight limit (receiveMaximum) is the backpressure here, so submit's wait is not needed.
        if (hasJson) void pipeline.submit({ source: 'MQTT', ...json, ack, fail });
        if (hasSpark) void pipeline.submit({ source: 'SPARKPLUG', ...spark, ack, fail });
      },
    );
    const onSparkplug = (e: ReturnType<NonNullable<typeof sp>['decode']>, at: Date) => {
      if (e.rebirth)
        void client
          .publish(e.rebirth.topic, e.rebirth.payload, { qos: 0 })
          .catch((err) => log.warn({ err: err.message }, 'rebirth request not sent'));
      if (e.seqGap) {
        const g = e.seqGap;
        pipeline.recordLoss({
          source: 'SPARKPLUG',
          kind: 'SEQ_GAP',
          detail: `${g.group}/${g.node}: expected seq ${g.expected}, got ${g.got}`,
          expected: g.expected,
          got: g.got,
          stream: `${g.group}/${g.node}`,
        });
      }
      if (e.stale) {
        const s = e.stale;
        pipeline.markStale(
          sp!.prefixOf(s),
          `${s.device ? 'DDEATH' : 'NDEATH'} from ${s.group}/${s.node}${s.device ? '/' + s.device : ''}`,
          at,
        );
      }
    };
    client.on('error', (err: Error) => log.error({ err: err.message }, 'mqtt ingest error'));
    client.on('offline', (err: Error) => {
      online = false;
      log.warn({ err: err?.message }, 'mqtt ingest offline; reconnecting');
    });
    client.on('connect', () => {
      online = true;
      // Announcements and wills sent while we were away (QoS 0) never reach us: start again from the retained
      // ones, which the broker sends after the SUBSCRIBE that follows every CONNACK.
      audience?.clear();
    });
    const { sessionPresent } = await client.start();
    if (o.iot.live.enabled) {
      // QoS 0 on the ingest connection: a dropped live message is a missed screen update, never lost data.
      pipeline.live = {
        prefix: o.iot.live.topicPrefix,
        sink: { publish: (topic, payload) => void client.publish(topic, payload, { qos: 0 }).catch(() => {}) },
        wants: audience ? (kind) => audience.wants(kind) : () => true,
      };
    }
    log.info(
      { url, clientId: m.clientId, sessionPresent, subscriptions: subscriptions.map((x) => x.filter) },
      'mqtt ingest connected',
    );
    mqtt = client;
  }

  let poller: HttpPoller | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  const saveStatus = () =>
    poller
      ? saveEndpointStatus(o.db, o.worker ?? hostname(), poller.status()).catch((err) =>
          log.warn({ err: err.message }, 'http status not saved'),
        )
      : undefined;
  if (o.iot.http.enabled && o.iot.http.endpoints.length) {
    poller = new HttpPoller(o.iot.http, pipeline, { maxFutureMs: p.maxFutureSeconds * 1000 });
    poller.start();
    // The iot subgraph serves this table; a couple of seconds old is fresh enough for a status page.
    statusTimer = setInterval(saveStatus, o.statusIntervalMs ?? 2000);
    statusTimer.unref();
  }

  return {
    pipeline,
    mqtt,
    // Not ready when offline, or when messages wait unacknowledged and nothing has committed for 30 s:
    // a stall must show on /readyz, not only as silence.
    ready: () => online && !((mqtt?.stats.inFlight ?? 0) > 0 && Date.now() - pipeline.lastCommitAt > 30_000),
    async stop() {
      closing = true;
      clearInterval(statusTimer);
      await poller?.stop();
      await saveStatus();
      // Commit what is in hand so its acks go out, then close the session. Messages arriving meanwhile are
      // refused by the stopped pipeline and stay unacknowledged: the broker delivers them on the next start.
      await pipeline.stop();
      await mqtt?.stop();
      await caches.stop();
    },
  };
}
