import type { Logger } from '../../log.ts';
import { MqttIngestClient, type InboundMessage } from '../../mqtt/ingest-client.ts';
import { InPipeline, type SourceState } from '../source.ts';
import type { SourceBatch, TelemetrySink } from '../types.ts';

export interface MqttSessionOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  subscriptions: { filter: string; qos: 0 | 1 }[];
  /** Filters this session held in an earlier layout of the hub and now leaves to another session. */
  unsubscribe?: string[];
  sessionExpirySeconds: number;
  receiveMaximum: number;
}

/** Messages in flight with no acknowledgement for this long: the source reports itself not ready (stalled). */
const STALL_MS = 30_000;
/** How long stop() waits for the batches in the pipeline to be acknowledged. */
const DRAIN_MS = 30_000;

/**
 * What both MQTT sources (JSON topics, the Sparkplug host) share: a persistent QoS 1 session of their own, batches
 * acknowledged only after commit, readiness (online, and acknowledgements flowing), and a stop that lets the
 * batches in hand commit before the connection closes.
 */
export class MqttSession {
  private client: MqttIngestClient | undefined;
  private readonly inPipeline = new InPipeline();
  private online = false;
  private closing = false;
  private lastAckAt = Date.now();
  private problem: string | undefined;

  constructor(
    private readonly opts: MqttSessionOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Connects; `onMessages` gets each socket chunk and hands back the batches made of it (or [] for a chunk it takes
   * no data from). Every message of the chunk is acknowledged once all those batches have committed.
   */
  async start(sink: TelemetrySink, onMessages: (msgs: InboundMessage[], receivedAt: Date) => SourceBatchParts[]) {
    const client = new MqttIngestClient(this.opts, (msgs) => {
      // While stopping, take nothing new: unacknowledged, these come again in the next session.
      if (this.closing) return;
      const batches = onMessages(msgs, new Date());
      // The chunk's PUBACKs go out once every batch made of it has committed: they may land in different pipeline
      // batches, which commit concurrently and finish in either order. The client sends PUBACKs in arrival order
      // whatever the order of these calls, so a chunk with nothing to store is acknowledged at once.
      let uncommitted = batches.length;
      const ack = () => {
        if (--uncommitted > 0) return;
        this.lastAckAt = Date.now();
        client.ack(msgs);
      };
      if (uncommitted === 0) return ack();
      // Not committed: drop the connection so the broker redelivers everything unacknowledged.
      const fail = (err: Error) => client.reconnect(`commit failed: ${err.message}`);
      // The broker's in-flight limit (receiveMaximum) is the backpressure here, so submit's wait is not needed.
      for (const b of batches) void sink.submit(this.inPipeline.track({ ...b, ack, fail }));
    });
    client.on('error', (err: Error) => {
      this.problem = err.message;
      this.log.error({ err: err.message }, 'mqtt ingest error');
    });
    client.on('offline', (err: Error) => {
      this.online = false;
      this.problem = `broker offline: ${err?.message ?? 'connection lost'}`;
      this.log.warn({ err: err?.message }, 'mqtt ingest offline; reconnecting');
    });
    client.on('connect', () => {
      this.online = true;
      this.problem = undefined;
    });
    this.client = client;
    const { sessionPresent } = await client.start();
    this.online = true;
    this.log.info(
      {
        url: this.opts.url,
        clientId: this.opts.clientId,
        sessionPresent,
        subscriptions: this.opts.subscriptions.map((s) => s.filter),
      },
      'mqtt ingest connected',
    );
  }

  /** QoS 0 publishes of the source's own (a Sparkplug rebirth request). */
  publish(topic: string, payload: Buffer): Promise<void> {
    if (!this.client) return Promise.reject(new Error('not started'));
    return this.client.publish(topic, payload, { qos: 0 });
  }

  async stop(): Promise<void> {
    this.closing = true;
    await this.inPipeline.drained(DRAIN_MS);
    await this.client?.stop();
    this.online = false;
  }

  /** Not ready when offline, or when messages wait unacknowledged and nothing was acknowledged for 30 s. */
  get state(): { state: SourceState; ready: boolean; problem?: string; counters: Record<string, number> } {
    const stats = this.client?.stats;
    const stalled = (stats?.inFlight ?? 0) > 0 && Date.now() - this.lastAckAt > STALL_MS;
    const ready = this.online && !stalled;
    const state: SourceState = this.closing ? 'STOPPED' : !this.client ? 'STARTING' : ready ? 'RUNNING' : 'DEGRADED';
    const problem = stalled
      ? `no acknowledgement for ${Math.round((Date.now() - this.lastAckAt) / 1000)} s`
      : this.problem;
    return {
      state,
      ready,
      problem: ready ? undefined : problem,
      counters: { ...(stats ?? {}), inPipeline: this.inPipeline.size },
    };
  }
}

/** A batch as a source makes it from a chunk; the session adds the acknowledgement. */
export type SourceBatchParts = Omit<SourceBatch, 'ack' | 'fail'>;
