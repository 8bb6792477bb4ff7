import { describe, expect, it } from 'vitest';
import {
  buildBirth,
  buildData,
  buildDeath,
  DataType,
  decodePayload,
  SparkplugState,
} from '../../lib/telemetry/sparkplug/index.ts';

/**
 * Reference payloads written byte by byte from the official schema (eclipse/tahu sparkplug_b/sparkplug_b.proto,
 * proto2) and protobuf's wire format, with no code of the hub's: the other Sparkplug tests build payloads with the
 * hub's own encoder, which would share any mistake with the decoder.
 *
 * From the proto: Payload { uint64 timestamp = 1; repeated Metric metrics = 2; uint64 seq = 3 }, Metric { string
 * name = 1; uint64 alias = 2; uint64 timestamp = 3; uint32 datatype = 4; bool is_null = 7; oneof value { uint32
 * int_value = 10; uint64 long_value = 11; float float_value = 12; double double_value = 13; bool boolean_value = 14;
 * string string_value = 15 } }. Wire format: a key is (field << 3 | wire type), wire types 0 varint, 1 fixed64,
 * 2 length-delimited, 5 fixed32; varints are little-endian base-128.
 */
const varint = (n: bigint): number[] => {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return out;
};
const key = (field: number, wireType: 0 | 1 | 2 | 5) => varint(BigInt((field << 3) | wireType));
const uint = (field: number, v: number | bigint) => [...key(field, 0), ...varint(BigInt(v))];
const bytes = (field: number, b: number[]) => [...key(field, 2), ...varint(BigInt(b.length)), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);
const float32 = (field: number, v: number) => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return [...key(field, 5), ...b];
};
const float64 = (field: number, v: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return [...key(field, 1), ...b];
};
const payload = (...parts: number[][]) => Buffer.from(parts.flat());
const metric = (...parts: number[][]) => bytes(2, parts.flat());

const T0 = 1_714_543_200_000;
const topic = (type: string, device?: string) => `spBv1.0/Plant1/${type}/edge-07${device ? `/${device}` : ''}`;

// NBIRTH: seq 0, bdSeq 3 (UInt64 in long_value), Node Control/Rebirth false (Boolean), as the spec requires.
const NBIRTH = payload(
  uint(1, T0),
  metric(str(1, 'bdSeq'), uint(4, 8), uint(11, 3)),
  metric(str(1, 'Node Control/Rebirth'), uint(4, 11), uint(14, 0)),
  uint(3, 0),
);
// DBIRTH (protocols.md's example and more): seq 1; every metric with name, alias, datatype and value.
const DBIRTH = payload(
  uint(1, T0 + 1),
  metric(str(1, 'Temperature'), uint(2, 10), uint(3, T0 - 50), uint(4, 9), float32(12, 71.5)),
  metric(str(1, 'State'), uint(2, 11), uint(4, 12), str(15, 'RUNNING')),
  metric(str(1, 'Count'), uint(2, 12), uint(4, 8), uint(11, 18231)),
  // Int32 -7 travels two's complement in the uint32 int_value: 0xFFFFFFF9.
  metric(str(1, 'Offset'), uint(2, 13), uint(4, 3), uint(10, 0xfffffff9)),
  metric(str(1, 'Running'), uint(2, 14), uint(4, 11), uint(14, 1)),
  metric(str(1, 'Speed'), uint(2, 15), uint(4, 10), float64(13, 1.25)),
  metric(str(1, 'Energy'), uint(2, 16), uint(4, 7), uint(10, 4_000_000_000)),
  uint(3, 1),
);
// DDATA: alias only, no datatype (as edge nodes send it), seq 2.
const DDATA = payload(
  uint(1, T0 + 5000),
  metric(uint(2, 10), uint(3, T0 + 4990), float32(12, 72.25)),
  metric(uint(2, 13), uint(10, 0xffffffff)),
  metric(uint(2, 16), uint(10, 4_000_000_001)),
  uint(3, 2),
);
// NDEATH (the Will): the bdSeq metric alone, no seq.
const NDEATH = payload(uint(1, T0 - 100_000), metric(str(1, 'bdSeq'), uint(4, 8), uint(11, 3)));

describe('Sparkplug B against reference bytes from the official proto', () => {
  it('decodes each field where the proto puts it', () => {
    const birth = decodePayload(DBIRTH);
    expect(birth.timestamp).toBe(T0 + 1);
    expect(Number(birth.seq)).toBe(1);
    const byName = Object.fromEntries(birth.metrics.map((m) => [m.name, m]));
    expect(byName.Temperature).toMatchObject({ datatype: 9, timestamp: T0 - 50, value: 71.5 });
    expect(Number(byName.Temperature!.alias)).toBe(10);
    expect(byName.State!.value).toBe('RUNNING');
    expect(Number(byName.Count!.value)).toBe(18231);
    expect(byName.Offset!.value).toBe(-7);
    expect(byName.Running!.value).toBe(true);
    expect(byName.Speed!.value).toBe(1.25);
    expect(Number(byName.Energy!.value)).toBe(4_000_000_000);
    const death = decodePayload(NDEATH);
    expect(death.seq).toBeUndefined();
    expect(death.metrics.map((m) => [m.name, Number(m.value)])).toEqual([['bdSeq', 3]]);
  });

  it('turns births and alias-only data into readings with the datatypes of the birth', () => {
    const s = new SparkplugState({ rebirthIntervalMs: 0 });
    expect(s.handle(topic('NBIRTH'), NBIRTH, new Date(T0)).deadLetters).toEqual([]);
    const born = s.handle(topic('DBIRTH', 'press-3'), DBIRTH, new Date(T0 + 1));
    expect(born.deadLetters).toEqual([]);
    const data = s.handle(topic('DDATA', 'press-3'), DDATA, new Date(T0 + 5000));
    expect(data.deadLetters).toEqual([]);
    expect(data.seqGap).toBeUndefined();
    expect(data.rebirth).toBeUndefined();
    const values = data.values.map((v) => [v.metric, v.value, v.ts.getTime()]);
    // Int32 0xFFFFFFFF is -1 (the birth said Int32); UInt32 stays unsigned. No timestamp: the payload's.
    expect(values).toEqual([
      ['Temperature', 72.25, T0 + 4990],
      ['Offset', -1, T0 + 5000],
      ['Energy', 4_000_000_001, T0 + 5000],
    ]);
    expect(s.handle(topic('NDEATH'), NDEATH, new Date(T0 + 6000)).stale).toEqual({ group: 'Plant1', node: 'edge-07' });
  });

  it("the test encoder writes those same bytes, so the other tests' payloads are the real wire format", () => {
    expect(
      buildBirth({
        bdSeq: 3,
        timestamp: T0,
        metrics: [],
      }).equals(NBIRTH),
    ).toBe(true);
    const birth = buildBirth({
      seq: 1,
      timestamp: T0 + 1,
      metrics: [
        { name: 'Temperature', alias: 10, datatype: DataType.Float, value: 71.5, timestamp: T0 - 50 },
        { name: 'State', alias: 11, datatype: DataType.String, value: 'RUNNING' },
        { name: 'Count', alias: 12, datatype: DataType.UInt64, value: 18231 },
        { name: 'Offset', alias: 13, datatype: DataType.Int32, value: -7 },
        { name: 'Running', alias: 14, datatype: DataType.Boolean, value: true },
        { name: 'Speed', alias: 15, datatype: DataType.Double, value: 1.25 },
        { name: 'Energy', alias: 16, datatype: DataType.UInt32, value: 4_000_000_000 },
      ],
    });
    expect(birth.toString('hex')).toBe(DBIRTH.toString('hex'));
    const data = buildData({
      seq: 2,
      timestamp: T0 + 5000,
      metrics: [
        { alias: 10, datatype: DataType.Float, value: 72.25, timestamp: T0 + 4990 },
        { alias: 13, datatype: DataType.Int32, value: -1 },
        { alias: 16, datatype: DataType.UInt32, value: 4_000_000_001 },
      ],
    });
    expect(data.toString('hex')).toBe(DDATA.toString('hex'));
    expect(buildDeath({ bdSeq: 3, timestamp: T0 - 100_000 }).toString('hex')).toBe(NDEATH.toString('hex'));
  });
});
