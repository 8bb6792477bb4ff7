import { describe, expect, it } from 'vitest';
import { JsonMappingSchema } from '../../lib/config/json-mapping.ts';
import { applyMapping } from '../../lib/telemetry/json-mapping.ts';
import { compileTopicFilter } from '../../lib/mqtt/topic-filter.ts';

const at = new Date('2026-11-22T12:00:00Z');
const map = (m: unknown) => JsonMappingSchema.parse(m);

describe('JSON mapping', () => {
  it('reads several values of one payload, each to its own sensor, with the payload timestamp', () => {
    const m = map({
      sensorId: { path: 'sensor_id' },
      values: [
        { path: 'temperature', sensorId: '{base}-TEMP' },
        { path: 'humidity', sensorId: '{base}-HUM' },
      ],
      timestamp: { path: 'timestamp' },
    });
    const out = applyMapping(
      m,
      { sensor_id: 'ZONE_A', temperature: 72.5, humidity: '45.2', timestamp: '2026-11-22T11:59:00Z' },
      { receivedAt: at },
    );
    expect(out.deadLetters).toEqual([]);
    expect(out.readings).toEqual([
      { sensorId: 'ZONE_A-TEMP', ts: new Date('2026-11-22T11:59:00Z'), value: 72.5 },
      { sensorId: 'ZONE_A-HUM', ts: new Date('2026-11-22T11:59:00Z'), value: 45.2 },
    ]);
  });

  it('takes the sensor id from a topic level, nested paths, epoch seconds and the source quality', () => {
    const m = map({
      sensorId: { topicSegment: 2 },
      values: [{ path: 'data.readings[1].v' }],
      timestamp: { path: 't', format: 'epoch_s' },
      quality: { path: 'q' },
    });
    const out = applyMapping(
      m,
      { data: { readings: [{ v: 1 }, { v: 2 }] }, t: 1795320000, q: 80 },
      { receivedAt: at, topicSegments: ['plant', 'L1', 'S-9'] },
    );
    expect(out.readings).toEqual([{ sensorId: 'S-9', ts: new Date(1795320000_000), value: 2, sourceQuality: 80 }]);
  });

  it('turns each bad value into a dead letter with its reason and keeps the good ones', () => {
    const m = map({
      sensorId: { value: 'S' },
      values: [
        { path: 'a', sensorId: 'A' },
        { path: 'b', sensorId: 'B' },
        { path: 'c', sensorId: 'C' },
      ],
    });
    const out = applyMapping(m, { a: 'NaN', b: 3, c: null }, { receivedAt: at });
    expect(out.readings).toEqual([{ sensorId: 'B', ts: at, value: 3 }]);
    expect(out.deadLetters.map((d) => [d.reason, d.sensorId])).toEqual([
      ['INVALID_VALUE', 'A'],
      ['UNMAPPABLE_PAYLOAD', 'C'],
    ]);
  });

  it('refuses timestamps before 1970, far in the future or unparseable', () => {
    const m = map({ sensorId: { value: 'S' }, values: [{ path: 'v' }], timestamp: { path: 't', format: 'epoch_ms' } });
    for (const t of [-5, at.getTime() + 3_600_000, 'soon']) {
      const out = applyMapping(m, { v: 1, t }, { receivedAt: at });
      expect(out.readings).toEqual([]);
      expect(out.deadLetters[0]!.reason).toBe('INVALID_TIMESTAMP');
    }
  });

  it('rejects a mapping without any way to name sensors, and a bad path', () => {
    expect(JsonMappingSchema.safeParse({ values: [{ path: 'v' }] }).success).toBe(false);
    expect(JsonMappingSchema.safeParse({ sensorId: { value: 'S' }, values: [{ path: 'a..b' }] }).success).toBe(false);
  });
});

describe('topic filters', () => {
  it('match + and # like a broker', () => {
    const f = compileTopicFilter('factory/+/temperature');
    expect(f('factory/L1/temperature')).toBe(true);
    expect(f('factory/L1/x/temperature')).toBe(false);
    expect(f('factory/L1')).toBe(false);
    const h = compileTopicFilter('factory/#');
    expect(h('factory/a/b/c')).toBe(true);
    expect(h('factory')).toBe(true);
    expect(h('other/a')).toBe(false);
    expect(compileTopicFilter('#')('$SYS/broker')).toBe(false);
    expect(() => compileTopicFilter('a/#/b')).toThrow();
    expect(() => compileTopicFilter('a/b+')).toThrow();
  });
});

describe('MQTT JSON decoder', () => {
  it(`gives each unusable message its own dead letter: no matching topic, oversized, not UTF-8, not JSON, \
missing unit`, async () => {
    const { createJsonDecoder } = await import('../../lib/telemetry/sources/mqtt-json.ts');
    const decode = createJsonDecoder(
      [
        {
          pattern: 'p/+',
          mapping: map({ sensorId: { topicSegment: 1 }, values: [{ path: 'v' }], unit: { path: 'u' } }),
        },
      ],
      { maxPayloadBytes: 100, maxFutureMs: 60_000 },
    );
    const out = { readings: [] as any[], deadLetters: [] as any[] };
    decode('q/S', Buffer.from('{"v":1,"u":"bar"}'), at, out);
    decode('p/S', Buffer.from(JSON.stringify({ v: 1, u: 'bar', pad: 'x'.repeat(200) })), at, out);
    decode('p/S', Buffer.from([0xff, 0xfe]), at, out);
    decode('p/S', Buffer.from('{"v":'), at, out);
    decode('p/S', Buffer.from('{"v":1}'), at, out);
    decode('p/S', Buffer.from('{"v":2,"u":"bar"}'), at, out);
    expect(out.deadLetters.map((d) => d.reason)).toEqual([
      'NO_MATCHING_TOPIC',
      'MALFORMED_PAYLOAD',
      'MALFORMED_PAYLOAD',
      'MALFORMED_PAYLOAD',
      'UNKNOWN_UNIT',
    ]);
    expect(out.deadLetters.every((d) => d.topic && d.payload)).toBe(true);
    expect(out.readings).toEqual([
      expect.objectContaining({
        sensorId: 'S',
        value: 2,
        unit: 'bar',
        origin: { topic: 'p/S', payload: Buffer.from('{"v":2,"u":"bar"}') },
      }),
    ]);
  });
});
