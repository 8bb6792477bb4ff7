import { applyMapping, type JsonMapping } from '../json-mapping.ts';
import { compileTopicFilter } from '../topic-filter.ts';
import type { DeadLetter, IncomingReading } from '../types.ts';

export interface TopicMapping {
  pattern: string;
  mapping: JsonMapping;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes MQTT JSON messages with the configured topic mappings (first matching pattern wins). A message that
 * cannot be used becomes a dead letter with its topic and raw bytes; it never stops the others.
 */
export function createJsonDecoder(topics: TopicMapping[], opts: { maxPayloadBytes: number; maxFutureMs: number }) {
  const compiled = topics.map((t) => ({ match: compileTopicFilter(t.pattern), mapping: t.mapping }));
  return function decode(topic: string, payload: Buffer, receivedAt: Date, out: { readings: IncomingReading[]; deadLetters: DeadLetter[] }): void {
    const dead = (reason: DeadLetter['reason'], detail: string): void => {
      out.deadLetters.push({ reason, detail, topic, payload });
    };
    const t = compiled.find((c) => c.match(topic));
    if (!t) return dead('NO_MATCHING_TOPIC', `no configured topic pattern matches ${topic}`);
    if (payload.length > opts.maxPayloadBytes) return dead('MALFORMED_PAYLOAD', `payload of ${payload.length} bytes is over the ${opts.maxPayloadBytes}-byte limit`);
    let doc: unknown;
    try {
      doc = JSON.parse(utf8.decode(payload));
    } catch (e) {
      return dead('MALFORMED_PAYLOAD', e instanceof TypeError ? 'payload is not valid UTF-8' : `payload is not JSON: ${(e as Error).message}`);
    }
    const r = applyMapping(t.mapping, doc, { topicSegments: topic.split('/'), receivedAt, maxFutureMs: opts.maxFutureMs });
    const origin = { topic, payload };
    for (const x of r.readings) out.readings.push({ ...x, origin });
    for (const d of r.deadLetters) out.deadLetters.push({ ...d, topic, payload });
  };
}
