import type { SourceContext, SourceStatus, TelemetrySource } from '../source.ts';
import { SparkplugState, type SparkplugResult } from '../sparkplug/index.ts';
import type { DeadLetter, IncomingReading, TelemetrySink } from '../types.ts';
import { type MqttConfig, sparkplugFilters } from './mqtt-json.ts';
import { MqttSession } from './mqtt-session.ts';

/** Characters a sensor id may not hold (see iot.sensors' check) become '_': "Motor Temp" → "Motor_Temp". */
const sanitize = (s: string) => s.replace(/[^A-Za-z0-9_.:/-]/g, '_');

/**
 * Sparkplug B messages to readings: births and aliases are tracked per edge node by SparkplugState; each metric
 * becomes the hub sensor named by the template (default `{group}/{node}/{device}/{metric}`, node metrics
 * without the device level). Loss is detected, not prevented: Sparkplug data is QoS 0 by spec.
 */
export function createSparkplugDecoder(opts: { sensorId: string; rebirthIntervalSeconds: number }) {
  const state = new SparkplugState({ rebirthIntervalMs: opts.rebirthIntervalSeconds * 1000 });
  const idOf = (v: { group: string; node: string; device?: string; metric: string }) =>
    sanitize(
      opts.sensorId
        .replaceAll('{group}', v.group)
        .replaceAll('{node}', v.node)
        .replaceAll('{device}', v.device ?? '')
        .replaceAll('{metric}', v.metric),
    )
      .replace(/\/{2,}/g, '/')
      .replace(/^\/|\/$/g, '');
  return {
    decode(
      topic: string,
      payload: Buffer,
      receivedAt: Date,
      out: { readings: IncomingReading[]; deadLetters: DeadLetter[] },
    ): Omit<SparkplugResult, 'values' | 'deadLetters'> {
      const r = state.handle(topic, payload, receivedAt);
      const origin = { topic, payload };
      for (const v of r.values) {
        out.readings.push(
          v.quality === undefined
            ? { sensorId: idOf(v), ts: v.ts, value: v.value, origin }
            : { sensorId: idOf(v), ts: v.ts, value: v.value, sourceQuality: v.quality, origin },
        );
      }
      for (const d of r.deadLetters) out.deadLetters.push(d);
      const { values: _v, deadLetters: _d, ...events } = r;
      return events;
    },
    /** The sensor id prefix of a node or device, for marking its series stale. */
    prefixOf: (s: { group: string; node: string; device?: string }) => `${idOf({ ...s, metric: '' })}/`,
  };
}

/**
 * The hub as a Sparkplug B host application (iot.yml mqtt.sparkplug): a session of its own on `spBv1.0/<group>/#`,
 * never shared (one host must see every message of an edge node to follow its births, aliases and seq). A seq gap
 * is recorded as a loss and answered with a rebirth request; NDEATH/DDEATH mark the node's sensors stale.
 */
export class SparkplugHost implements TelemetrySource {
  readonly name = 'sparkplug';
  readonly kind = 'SPARKPLUG' as const;
  private session: MqttSession | undefined;

  constructor(
    private readonly cfg: MqttConfig,
    private readonly opts: { url: string },
  ) {}

  async start(sink: TelemetrySink, ctx: SourceContext): Promise<void> {
    const sp = this.cfg.sparkplug;
    const decoder = createSparkplugDecoder(sp);
    const log = ctx.log.child({ source: this.name });
    const session = new MqttSession(
      {
        url: this.opts.url,
        clientId: sparkplugClientId(this.cfg),
        username: this.cfg.username,
        password: this.cfg.password,
        subscriptions: sparkplugFilters(this.cfg).map((filter) => ({ filter, qos: 1 })),
        sessionExpirySeconds: this.cfg.sessionExpirySeconds,
        receiveMaximum: this.cfg.receiveMaximum,
      },
      log,
    );
    this.session = session;
    await session.start(sink, (msgs, receivedAt) => {
      const out = { readings: [] as IncomingReading[], deadLetters: [] as DeadLetter[] };
      for (const m of msgs) {
        const e = decoder.decode(m.topic, m.payload, receivedAt, out);
        if (e.rebirth) {
          session
            .publish(e.rebirth.topic, e.rebirth.payload)
            .catch((err) => log.warn({ err: err.message }, 'rebirth request not sent'));
        }
        if (e.seqGap) {
          const g = e.seqGap;
          const detail = `${g.group}/${g.node}: expected seq ${g.expected}, got ${g.got}`;
          const stream = `${g.group}/${g.node}`;
          sink.recordLoss?.({ source: this.kind, kind: 'SEQ_GAP', detail, expected: g.expected, got: g.got, stream });
        }
        if (e.stale) {
          const d = e.stale;
          const who = `${d.group}/${d.node}${d.device ? `/${d.device}` : ''}`;
          sink.markStale?.(this.kind, decoder.prefixOf(d), `${d.device ? 'DDEATH' : 'NDEATH'} from ${who}`, receivedAt);
        }
      }
      return out.readings.length || out.deadLetters.length ? [{ source: 'SPARKPLUG', ...out }] : [];
    });
  }

  stop(): Promise<void> {
    return this.session?.stop() ?? Promise.resolve();
  }

  status(): SourceStatus {
    const s = this.session?.state ?? { state: 'STARTING' as const, ready: false, counters: {} };
    return { name: this.name, kind: this.kind, ...s };
  }
}

/**
 * The host's own session, beside the JSON topics' one. With no JSON topics it takes mqtt.clientId itself, so a
 * Sparkplug-only hub keeps the session (and whatever is queued in it) it had when one session took everything.
 */
export const sparkplugClientId = (cfg: MqttConfig): string =>
  cfg.sparkplug.clientId ?? (cfg.topics.length ? `${cfg.clientId}-sparkplug` : cfg.clientId);
