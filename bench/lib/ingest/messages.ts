/** The bench's MQTT messages, the same for every phase and both consumers. */
import { sensorId, TOPIC_PREFIX } from '../ingest-setup.ts';
import type { MessageFactory } from '../mqtt-publisher.ts';
import { SENSORS } from './common.ts';

// Messages: topic bench/S-0001..S-1000 round-robin, ~100-byte JSON, t = base + seq (unique (sensor, t) each).

export const TOPICS = Array.from({ length: SENSORS }, (_, i) => Buffer.from(`${TOPIC_PREFIX}/${sensorId(i)}`));
const PAD = 'x'.repeat(34);

/** Messages seq 0.. of one phase; every `sampleEvery`-th one is remembered with its publish time. */
export class Messages implements MessageFactory {
  readonly sampleSeq: number[] = [];
  readonly sampleSentMs: number[] = [];
  constructor(
    readonly base: number,
    private readonly sampleEvery = 0,
  ) {}
  topic(seq: number): Buffer {
    return TOPICS[seq % SENSORS]!;
  }
  payload(seq: number, sentMs: number): string {
    if (this.sampleEvery && seq % this.sampleEvery === 0) {
      this.sampleSeq.push(seq);
      this.sampleSentMs.push(sentMs);
    }
    return `{"v":${(seq % 100_000) / 1000},"t":${this.base + seq},"q":100,"p":${Math.round(sentMs)},"pad":"${PAD}"}`;
  }
}
