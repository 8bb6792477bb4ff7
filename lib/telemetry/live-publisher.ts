import { Gauge, type Registry } from 'prom-client';
import type { AlertRow } from '../db/rows.ts';
import { log } from '../log.ts';
import { MqttIngestClient } from '../mqtt/ingest-client.ts';
import type { TelemetryCaches } from './caches.ts';
import { LiveAudience, LiveReadingEncoder, publishLive, type LiveAlert, type LiveSink } from './live.ts';
import type { CommittedBatch } from './pipeline.ts';
import { sourceName } from './sources.ts';

export interface LivePublisherOptions {
  url: string;
  /** The ingest's own client id with `-live` appended: a connection of its own, without a persistent session. */
  clientId: string;
  username?: string;
  password?: string;
  prefix: string;
  /** `listened`: only while a consumer has announced itself (see live.ts); `always`: regardless. */
  publish: 'listened' | 'always';
}

/**
 * The live channel's publisher, as the pipeline's after-commit hook: committed readings and new alerts go out at
 * QoS 0 on a connection of their own (a dropped live message is a missed screen update, never lost data). With
 * `publish: listened` it also follows the listeners' retained announcements and encodes nothing while nobody
 * listens.
 */
export class LivePublisher {
  private readonly audience: LiveAudience | undefined;
  private readonly encoder = new LiveReadingEncoder();
  private client: MqttIngestClient | undefined;
  private readonly sink: LiveSink;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly opts: LivePublisherOptions,
    private readonly caches: TelemetryCaches,
    registry: Registry,
  ) {
    this.audience = opts.publish === 'listened' ? new LiveAudience(opts.prefix) : undefined;
    const audience = this.audience;
    this.sink = {
      publish: (topic, payload) => void this.client?.publish(topic, payload, { qos: 0 }).catch(() => {}),
    };
    if (audience) {
      // 0 while a dashboard is open means its consumer does not announce itself (see live.ts).
      new Gauge({
        name: 'hub_live_listeners',
        help: 'Live-channel consumers announced to this ingest (0: live publishing is off)',
        registers: [registry],
        collect() {
          this.set(audience.size);
        },
      });
    }
  }

  /**
   * Connects. A broker that is not there yet does not hold up the ingest (the live channel is best effort): the
   * first connection is retried every 5 s in the background, and the client reconnects by itself after that.
   */
  async start(): Promise<void> {
    const client = this.newClient();
    try {
      await client.start();
      if (this.stopped) await client.stop();
      else this.client = client;
    } catch (err) {
      if (this.stopped) return;
      log.warn({ err: (err as Error).message }, 'live channel not connected; retrying in 5 s');
      this.retry = setTimeout(() => void this.start(), 5000);
      this.retry.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.client?.stop();
  }

  private newClient(): MqttIngestClient {
    const { opts, audience } = this;
    const client = new MqttIngestClient(
      {
        url: opts.url,
        clientId: opts.clientId,
        username: opts.username,
        password: opts.password,
        cleanStart: true,
        // Announcements are retained: the broker sends them again after every SUBSCRIBE, so after a restart too.
        subscriptions: audience ? [{ filter: audience.filter, qos: 0 }] : [],
      },
      (msgs) => {
        for (const m of msgs) audience?.update(m.topic, m.payload);
      },
    );
    client.on('error', (err: Error) => log.warn({ err: err.message }, 'live channel error'));
    client.on('offline', (err: Error) => log.warn({ err: err?.message }, 'live channel offline; reconnecting'));
    // Announcements and wills sent while we were away (QoS 0) never reach us: start again from the retained ones.
    client.on('connect', () => audience?.clear());
    return client;
  }

  /** The pipeline's after-commit hook. */
  readonly afterCommit = (b: CommittedBatch): void => {
    const wants = (kind: 'readings' | 'alerts') => !this.audience || this.audience.wants(kind);
    // Nobody listening (no announced consumer): not encoding every reading again is most of the saving.
    const readings = wants('readings') ? b.rows : [];
    const alerts = wants('alerts') ? b.alerts : [];
    if (!readings.length && !alerts.length) return;
    publishLive(
      this.sink,
      this.opts.prefix,
      readings.map((r, i) => {
        const s = b.series[i]!;
        return {
          lineId: s.lineId,
          json: this.encoder.encode({
            sensorId: s.sensorId,
            sensorType: s.signal,
            machineId: s.machineId,
            ts: r.ts.toISOString(),
            value: r.value,
            quality: r.quality,
            source: sourceName(r.source),
            workOrderId: r.workOrderId ?? null,
            operatorId: r.operatorId ?? null,
          }),
        };
      }),
      alerts.map((a) => this.liveAlert(a)),
    );
  };

  private liveAlert(a: AlertRow): { lineId: string; alert: LiveAlert } {
    const lineId =
      (a.sensorId ? this.caches.get(a.sensorId)?.lineId : undefined) ?? this.caches.lineOfMachine(a.machineId);
    const alert = {
      ...a,
      ts: a.ts.toISOString(),
      createdAt: a.createdAt.toISOString(),
      acknowledgedAt: undefined,
      acknowledgedBy: undefined,
    } as LiveAlert;
    return { lineId: lineId ?? 'unknown', alert };
  }
}
