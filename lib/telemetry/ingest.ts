import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { IotConfig } from '../config/iot.ts';
import type { Db } from '../db/index.ts';
import { log } from '../log.ts';
import { TelemetryCaches } from './caches.ts';
import { LivePublisher } from './live-publisher.ts';
import { TelemetryPipeline } from './pipeline.ts';
import type { SourceStatus, TelemetrySource } from './source.ts';
import { saveSourceStatus } from './source-status.repo.ts';
import { configuredSources } from './sources/index.ts';

export interface IngestOptions {
  db: Db;
  databaseUrl: string;
  /** hub.yml mqtt.url (MQTT_URL), for sources and the live channel that name no broker of their own. */
  mqttUrl?: string;
  iot: IotConfig;
  registry: Registry;
  /**
   * Names this worker in the sources' status. Default: the host name, and the MQTT client id when there is one (two
   * workers of one shared group on one machine differ by it, and a restarted worker keeps its name, as its session).
   */
  worker?: string;
  /** How often the sources' status is saved for the iot subgraph (default 2 s). */
  statusIntervalMs?: number;
  /** Sources besides those iot.yml configures (what a test or an embedding program brings). */
  extraSources?: TelemetrySource[];
}

export interface RunningIngest {
  pipeline: TelemetryPipeline;
  sources: readonly TelemetrySource[];
  /** For /readyz: every source can take data in (true when there is none). */
  ready(): boolean;
  status(): SourceStatus[];
  stop(): Promise<void>;
}

/**
 * Live ingest: the sources iot.yml configures, feeding the one pipeline, whose commits go to the live channel.
 * Several of these may run at once (processes or machines) with one `sharedGroup`: the broker splits the JSON
 * messages between them.
 */
export async function startIngest(o: IngestOptions): Promise<RunningIngest> {
  const caches = new TelemetryCaches(o.db, o.databaseUrl);
  await caches.start();
  const live = livePublisher(o, caches);
  const p = o.iot.pipeline;
  const pipeline = new TelemetryPipeline(
    o.db,
    caches,
    o.registry,
    {
      batchMaxRows: p.batchMaxRows,
      batchMaxDelayMs: p.batchMaxDelayMs,
      maxQueuedRows: p.maxQueuedRows,
      duplicateWindowMs: p.duplicateWindowMs,
      degradedQuality: 50,
      commitAttempts: 5,
      commitConcurrency: p.commitConcurrency,
    },
    { afterCommit: live?.afterCommit },
  );
  const sources = [
    ...configuredSources({ iot: o.iot, mqttUrl: o.mqttUrl, statusIntervalMs: o.statusIntervalMs }),
    ...(o.extraSources ?? []),
  ];
  const worker = o.worker ?? (o.iot.mqtt?.enabled ? `${hostname()}/${o.iot.mqtt.clientId}` : hostname());
  const started: TelemetrySource[] = [];
  const stopAll = async () => {
    // Each source takes nothing new and waits for its batches to commit; then the pipeline commits what is left.
    // What was not acknowledged comes again on the next start.
    await Promise.all(started.map((s) => s.stop().catch((err) => log.error({ err, source: s.name }, 'stop failed'))));
    await pipeline.stop();
    await live?.stop();
    await caches.stop();
  };
  try {
    await live?.start();
    for (const s of sources) {
      await s.start(pipeline, { db: o.db, log, worker });
      started.push(s);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  const status = () => sources.map((s) => s.status());
  const save = () =>
    saveSourceStatus(o.db, worker, status()).catch((err) => log.warn({ err: err.message }, 'source status not saved'));
  const timer = setInterval(save, o.statusIntervalMs ?? 2000);
  timer.unref();
  log.info({ worker, sources: sources.map((s) => s.name), live: !!live }, 'ingest running');
  return {
    pipeline,
    sources,
    ready: () => sources.every((s) => s.status().ready),
    status,
    async stop() {
      clearInterval(timer);
      await stopAll();
      await save();
    },
  };
}

/** The live channel, when iot.yml enables it and there is a broker to publish on. */
function livePublisher(o: IngestOptions, caches: TelemetryCaches): LivePublisher | undefined {
  const m = o.iot.mqtt;
  const url = m?.url ?? o.mqttUrl;
  if (!o.iot.live.enabled || !url) return undefined;
  return new LivePublisher(
    {
      url,
      // No persistent session, so no stable id is needed; a unique one keeps workers from taking each other's.
      clientId: `${m?.clientId ?? 'oee-hub-ingest'}-live-${randomBytes(3).toString('hex')}`,
      username: m?.username,
      password: m?.password,
      prefix: o.iot.live.topicPrefix,
      publish: o.iot.live.publish,
    },
    caches,
    o.registry,
  );
}
