import { SparkplugState, type SparkplugResult } from '../sparkplug/index.ts';
import type { DeadLetter, IncomingReading } from '../types.ts';

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
    prefixOf: (s: { group: string; node: string; device?: string }) => idOf({ ...s, metric: '' }) + '/',
  };
}
