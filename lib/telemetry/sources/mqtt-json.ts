import { isUtf8 } from 'node:buffer';
import type { JsonMapping } from '../../config/json-mapping.ts';
import { applyMapping } from '../json-mapping.ts';
import { compileTopicFilter } from '../../mqtt/topic-filter.ts';
import type { IotConfig } from '../../config/iot.ts';
import type { SourceContext, SourceStatus, TelemetrySource } from '../source.ts';
import type { DeadLetter, IncomingReading, TelemetrySink } from '../types.ts';
import { listenerTopic } from '../live.ts';
import { MqttSession } from './mqtt-session.ts';

export interface TopicMapping {
  pattern: string;
  mapping: JsonMapping;
}

const TOPIC_CACHE_SIZE = 20_000;

/**
 * Decodes MQTT JSON messages with the configured topic mappings (first matching pattern wins). A message that
 * cannot be used becomes a dead letter with its topic and raw bytes; it never stops the others.
 */
export function createJsonDecoder(topics: TopicMapping[], opts: { maxPayloadBytes: number; maxFutureMs: number }) {
  const compiled = topics.map((t) => ({ match: compileTopicFilter(t.pattern), mapping: t.mapping }));
  // A plant's topics are a fixed set, each seen again and again: split and match each once. Bounded, so a flood
  // of distinct topics (a misconfigured device) costs a cache refill, never unbounded memory.
  const byTopic = new Map<string, { levels: string[]; mapping: JsonMapping | undefined }>();
  const route = (topic: string) => {
    let r = byTopic.get(topic);
    if (!r) {
      const levels = topic.split('/');
      r = { levels, mapping: compiled.find((c) => c.match(topic, levels))?.mapping };
      // Only routable topics of plausible length: a flood of junk topics must not fill the cache with itself.
      if (r.mapping && topic.length <= 256) {
        if (byTopic.size >= TOPIC_CACHE_SIZE) byTopic.clear();
        byTopic.set(topic, r);
      }
    }
    return r;
  };
  return function decode(
    topic: string,
    payload: Buffer,
    receivedAt: Date,
    out: { readings: IncomingReading[]; deadLetters: DeadLetter[] },
  ): void {
    const { levels, mapping } = route(topic);
    let reason: DeadLetter['reason'] | undefined;
    let detail = '';
    let doc: unknown;
    if (!mapping) {
      reason = 'NO_MATCHING_TOPIC';
      detail = `no configured topic pattern matches ${topic}`;
    } else if (payload.length > opts.maxPayloadBytes) {
      reason = 'MALFORMED_PAYLOAD';
      detail = `payload of ${payload.length} bytes is over the ${opts.maxPayloadBytes}-byte limit`;
    }
    // isUtf8 is a native check (simdutf); far cheaper per message than a fatal TextDecoder.
    else if (!isUtf8(payload)) {
      reason = 'MALFORMED_PAYLOAD';
      detail = 'payload is not valid UTF-8';
    } else {
      try {
        doc = JSON.parse(payload.toString('utf8'));
      } catch (e) {
        reason = 'MALFORMED_PAYLOAD';
        detail = `payload is not JSON: ${(e as Error).message}`;
      }
    }
    if (reason) {
      out.deadLetters.push({ reason, detail, topic, payload });
      return;
    }
    const origin = { topic, payload };
    const r = applyMapping(
      mapping!,
      doc,
      { topicSegments: levels, receivedAt, maxFutureMs: opts.maxFutureMs, origin },
      out.readings,
    );
    for (const d of r.deadLetters) out.deadLetters.push({ ...d, topic, payload });
  };
}

export type MqttConfig = NonNullable<IotConfig['mqtt']>;

/** The Sparkplug host's subscriptions: every message of its groups (births, data, deaths). */
export const sparkplugFilters = (cfg: MqttConfig): string[] => cfg.sparkplug.groups.map((g) => `spBv1.0/${g}/#`);

/**
 * JSON over MQTT (iot.yml mqtt.topics): one persistent QoS 1 session, its topics shared with the other workers of
 * `sharedGroup`, every message decoded by the first topic mapping that matches.
 */
export class MqttJsonSource implements TelemetrySource {
  readonly name = 'mqtt';
  readonly kind = 'MQTT' as const;
  private session: MqttSession | undefined;

  constructor(
    private readonly cfg: MqttConfig,
    private readonly opts: {
      url: string;
      /** The live channel's prefix: output of the hub, never input (a '#' pattern would otherwise loop it back). */
      livePrefix: string;
      maxFutureMs: number;
    },
  ) {}

  async start(sink: TelemetrySink, ctx: SourceContext): Promise<void> {
    const { cfg } = this;
    const decode = createJsonDecoder(cfg.topics, {
      maxPayloadBytes: cfg.maxPayloadBytes,
      maxFutureMs: this.opts.maxFutureMs,
    });
    const share = (f: string) => (cfg.sharedGroup ? `$share/${cfg.sharedGroup}/${f}` : f);
    // Sparkplug topics belong to the Sparkplug host (a session of its own), should a pattern here match them too.
    const skip = [`${this.opts.livePrefix}/`, ...(cfg.sparkplug.enabled ? ['spBv1.0/'] : [])];
    this.session = new MqttSession(
      {
        url: this.opts.url,
        clientId: cfg.clientId,
        username: cfg.username,
        password: cfg.password,
        subscriptions: cfg.topics.map((t) => ({ filter: share(t.pattern), qos: 1 })),
        // Before the house (issue 10) this one session also took Sparkplug and the live channel's announcements;
        // those have sessions of their own now, and a resumed session would otherwise keep receiving (and skipping)
        // them.
        unsubscribe: [...sparkplugFilters(cfg), listenerTopic(this.opts.livePrefix, '+')],
        sessionExpirySeconds: cfg.sessionExpirySeconds,
        receiveMaximum: cfg.receiveMaximum,
      },
      ctx.log.child({ source: this.name }),
    );
    await this.session.start(sink, (msgs, receivedAt) => {
      const out = { readings: [] as IncomingReading[], deadLetters: [] as DeadLetter[] };
      for (const m of msgs) if (!skip.some((p) => m.topic.startsWith(p))) decode(m.topic, m.payload, receivedAt, out);
      return out.readings.length || out.deadLetters.length ? [{ source: 'MQTT', ...out }] : [];
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
