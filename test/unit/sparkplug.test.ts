import { describe, expect, it } from 'vitest';
import {
  buildBirth,
  buildData,
  buildDeath,
  DataType,
  decodePayload,
  encodePayload,
  interpretValue,
  SparkplugState,
  type DataMetric,
  type SparkplugResult,
} from '../../lib/telemetry/sparkplug/index.ts';

const T0 = 1_714_543_200_000;
const at = (ms: number) => new Date(T0 + ms);

const G = 'Plant1';
const N = 'edge-07';
const D = 'press-3';
const topic = (type: string, device?: string) => `spBv1.0/${G}/${type}/${N}${device ? `/${device}` : ''}`;

/** An alias-only DATA payload, datatype not written (as edge nodes send it). */
const data = (seq: number, ...metrics: DataMetric[]) => buildData({ seq, timestamp: T0 + seq, metrics });
const float = (alias: number, value: number): DataMetric => ({ alias, datatype: DataType.Float, value });

/** The metric of a decoded rebirth command, to assert what would be published. */
function rebirthMetric(r: SparkplugResult) {
  expect(r.rebirth?.topic).toBe(`spBv1.0/${G}/NCMD/${N}`);
  const p = decodePayload(r.rebirth!.payload);
  expect(p.metrics).toHaveLength(1);
  return p.metrics[0]!;
}

/** A node with one device: NBIRTH (seq 0, bdSeq 3) with alias 1, DBIRTH (seq 1) with aliases 10..14. */
function bornNode(opts: { rebirthIntervalMs?: number } = {}) {
  const s = new SparkplugState(opts);
  const nb = s.handle(
    topic('NBIRTH'),
    buildBirth({
      bdSeq: 3,
      timestamp: T0,
      metrics: [{ name: 'Supply Voltage', alias: 1, datatype: DataType.Float, value: 12.1 }],
    }),
    at(0),
  );
  const db = s.handle(
    topic('DBIRTH', D),
    buildBirth({
      seq: 1,
      timestamp: T0 + 1,
      metrics: [
        { name: 'Temperature', alias: 10, datatype: DataType.Float, value: 71.5, timestamp: T0 - 50 },
        { name: 'State', alias: 11, datatype: DataType.String, value: 'RUNNING' },
        { name: 'Count', alias: 12, datatype: DataType.UInt64, value: 18231 },
        { name: 'Offset', alias: 13, datatype: DataType.Int32, value: -7 },
        { name: 'Running', alias: 14, datatype: DataType.Boolean, value: true },
      ],
    }),
    at(1),
  );
  return { s, nb, db };
}

describe('Sparkplug B codec', () => {
  const cases: Array<[string, number, number | bigint | boolean]> = [
    ['Int8 min', DataType.Int8, -128],
    ['Int8 -1', DataType.Int8, -1],
    ['Int8 max', DataType.Int8, 127],
    ['Int16 min', DataType.Int16, -32768],
    ['Int16 max', DataType.Int16, 32767],
    ['Int32 min', DataType.Int32, -2147483648],
    ['Int32 -1', DataType.Int32, -1],
    ['Int32 max', DataType.Int32, 2147483647],
    ['Int64 -1', DataType.Int64, -1],
    ['Int64 -2^53+1', DataType.Int64, -9007199254740991],
    ['Int64 2^53-1', DataType.Int64, 9007199254740991],
    ['Int64 min (bigint)', DataType.Int64, -(2n ** 63n)],
    ['Int64 max (bigint)', DataType.Int64, 2n ** 63n - 1n],
    ['UInt8 max', DataType.UInt8, 255],
    ['UInt16 max', DataType.UInt16, 65535],
    ['UInt32 max', DataType.UInt32, 4294967295],
    ['UInt64 0', DataType.UInt64, 0],
    ['UInt64 2^53-1', DataType.UInt64, 9007199254740991],
    ['UInt64 2^53+1 (bigint)', DataType.UInt64, 2n ** 53n + 1n],
    ['UInt64 max (bigint)', DataType.UInt64, 2n ** 64n - 1n],
    ['Float 72.5', DataType.Float, 72.5],
    ['Float -0.25', DataType.Float, -0.25],
    ['Double 0.1+0.2', DataType.Double, 0.1 + 0.2],
    ['Double -1e300', DataType.Double, -1e300],
    ['Boolean true', DataType.Boolean, true],
    ['Boolean false', DataType.Boolean, false],
    ['DateTime', DataType.DateTime, T0],
  ];

  it.each(cases)('round-trips %s', (_label, datatype, value) => {
    const metric = { name: 'm', alias: 5, datatype, value, timestamp: T0 + 1 };
    const buf = encodePayload({ timestamp: T0, seq: 7, metrics: [metric] });
    const p = decodePayload(buf);
    expect(p.timestamp).toBe(T0);
    expect(p.seq).toBe(7);
    expect(p.metrics).toHaveLength(1);
    const m = p.metrics[0]!;
    expect(m).toMatchObject({ name: 'm', alias: 5, datatype, timestamp: T0 + 1, isNull: false });
    expect(m.value).toBe(value);
  });

  it("writes negative Int8/16/32 as 32-bit two's complement in int_value, Int64 as 64-bit in long_value", () => {
    const p = decodePayload(
      encodePayload({
        metrics: [
          { name: 'a', datatype: DataType.Int8, value: -1 },
          { name: 'b', datatype: DataType.Int16, value: -2 },
          { name: 'c', datatype: DataType.Int64, value: -1 },
        ],
      }),
    );
    expect(p.metrics.map((m) => m.raw)).toEqual([
      { kind: 'int', value: 0xffffffff },
      { kind: 'int', value: 0xfffffffe },
      { kind: 'long', lo: 0xffffffff, hi: 0xffffffff },
    ]);
  });

  it('reads what other senders put on the wire: Int8 as 8-bit 0xFF, UInt32 in long_value, datatype-less ints', () => {
    expect(interpretValue({ kind: 'int', value: 0xff }, DataType.Int8)).toBe(-1);
    expect(interpretValue({ kind: 'int', value: 0x80 }, DataType.Int8)).toBe(-128);
    expect(interpretValue({ kind: 'int', value: 0xffff }, DataType.Int16)).toBe(-1);
    expect(interpretValue({ kind: 'long', lo: 0xffffffff, hi: 0 }, DataType.UInt32)).toBe(4294967295);
    expect(interpretValue({ kind: 'long', lo: 0xfffffffb, hi: 0xffffffff }, DataType.Int32)).toBe(-5);
    // Without a datatype an int field is unsigned: only the birth's datatype can make it negative.
    const buf = encodePayload({ metrics: [{ alias: 1, datatype: DataType.Int32, omitDatatype: true, value: -3 }] });
    const [m] = decodePayload(buf).metrics;
    expect(m!.datatype).toBeUndefined();
    expect(m!.value).toBe(4294967293);
    expect(interpretValue(m!.raw, DataType.Int32)).toBe(-3);
  });

  it('gives floats their shortest float32 decimal, not the widened double', () => {
    const buf = encodePayload({ metrics: [{ name: 't', datatype: DataType.Float, value: 72.1 }] });
    const [m] = decodePayload(buf).metrics;
    expect(m!.raw).toEqual({ kind: 'float', value: Math.fround(72.1) });
    expect(Math.fround(72.1)).not.toBe(72.1);
    expect(m!.value).toBe(72.1);
  });

  it('keeps is_null, is_historical and absent fields apart from zero values', () => {
    const p = decodePayload(
      encodePayload({
        metrics: [
          { alias: 0, datatype: DataType.Double, value: null },
          { name: 'h', datatype: DataType.Double, value: 0, isHistorical: true },
        ],
      }),
    );
    expect(p.timestamp).toBeUndefined();
    expect(p.seq).toBeUndefined();
    expect(p.metrics[0]).toMatchObject({ alias: 0, isNull: true, raw: { kind: 'none' }, value: undefined });
    expect(p.metrics[0]!.name).toBeUndefined();
    expect(p.metrics[1]).toMatchObject({ name: 'h', isHistorical: true, value: 0 });
    expect(p.metrics[1]!.alias).toBeUndefined();
  });

  it('refuses to encode values that do not fit their datatype', () => {
    const encode = (datatype: number, value: number | bigint) => () =>
      encodePayload({ metrics: [{ name: 'x', datatype, value }] });
    expect(encode(DataType.Int8, 128)).toThrow(RangeError);
    expect(encode(DataType.UInt32, -1)).toThrow(RangeError);
    expect(encode(DataType.UInt64, -1)).toThrow(RangeError);
    expect(encode(DataType.Int64, 2n ** 63n)).toThrow(RangeError);
    expect(encode(DataType.Int8, 127)).not.toThrow();
  });

  it('throws on bytes that are not a Sparkplug protobuf', () => {
    expect(() => decodePayload(Buffer.from('{"temperature": 21.5}'))).toThrow();
    expect(() => decodePayload(Buffer.from([0x12, 0x05, 0x01]))).toThrow();
  });
});

describe('SparkplugState', () => {
  it('emits the birth values, then resolves alias-only DDATA to named values with the birth datatypes', () => {
    const { s, nb, db } = bornNode();
    // bdSeq and Node Control/Rebirth are session bookkeeping, not readings.
    expect(nb).toEqual({
      values: [{ group: G, node: N, metric: 'Supply Voltage', ts: at(0), value: 12.1 }],
      deadLetters: [],
      birth: { group: G, node: N },
    });
    // The String metric is skipped; metric timestamp wins over the payload's.
    expect(db.values).toEqual([
      { group: G, node: N, device: D, metric: 'Temperature', ts: new Date(T0 - 50), value: 71.5 },
      { group: G, node: N, device: D, metric: 'Count', ts: at(1), value: 18231 },
      { group: G, node: N, device: D, metric: 'Offset', ts: at(1), value: -7 },
      { group: G, node: N, device: D, metric: 'Running', ts: at(1), value: 1 },
    ]);
    expect(db.deadLetters).toEqual([]);
    expect(db.birth).toEqual({ group: G, node: N, device: D });

    const r = s.handle(
      topic('DDATA', D),
      buildData({
        seq: 2,
        timestamp: T0 + 5000,
        metrics: [
          { alias: 10, datatype: DataType.Float, value: 72.1, timestamp: T0 + 4990 },
          { alias: 11, datatype: DataType.String, value: 'IDLE' },
          { alias: 12, datatype: DataType.UInt64, value: 18232 },
          { alias: 13, datatype: DataType.Int32, value: -8 },
          { alias: 14, datatype: DataType.Boolean, value: false },
          { alias: 10, datatype: DataType.Float, value: null },
          { alias: 12, datatype: DataType.UInt64, value: 18000, isHistorical: true, timestamp: T0 - 60_000 },
        ],
      }),
      at(5100),
    );
    expect(r).toEqual({
      values: [
        { group: G, node: N, device: D, metric: 'Temperature', ts: at(4990), value: 72.1 },
        { group: G, node: N, device: D, metric: 'Count', ts: at(5000), value: 18232 },
        { group: G, node: N, device: D, metric: 'Offset', ts: at(5000), value: -8 },
        { group: G, node: N, device: D, metric: 'Running', ts: at(5000), value: 0 },
        { group: G, node: N, device: D, metric: 'Count', ts: at(-60_000), value: 18000, historical: true },
      ],
      deadLetters: [],
    });
  });

  it('skips strings, bytes, DataSets, Templates and DateTimes without dead letters', () => {
    const rows = [{ elements: [{ intValue: 5 }] }];
    const dataset = { numOfColumns: 1, columns: ['a'], types: [DataType.Int32], rows };
    const s = new SparkplugState();
    const r = s.handle(
      topic('NBIRTH'),
      buildBirth({
        bdSeq: 0,
        timestamp: T0,
        metrics: [
          { name: 'Label', alias: 1, datatype: DataType.Text, value: 'x' },
          { name: 'Blob', alias: 2, datatype: DataType.Bytes, value: Buffer.from([1, 2]) },
          {
            name: 'Table',
            alias: 3,
            datatype: DataType.DataSet,
            value: dataset,
          },
          {
            name: 'Motor',
            alias: 4,
            datatype: DataType.Template,
            value: {
              templateRef: 'MotorType',
              isDefinition: false,
              metrics: [{ name: 'rpm', datatype: DataType.Double, doubleValue: 1500 }],
            },
          },
          { name: 'Started', alias: 5, datatype: DataType.DateTime, value: T0 - 1000 },
          { name: 'Speed', alias: 6, datatype: DataType.Double, value: 1.25 },
        ],
      }),
      at(0),
    );
    expect(r.deadLetters).toEqual([]);
    expect(r.values).toEqual([{ group: G, node: N, metric: 'Speed', ts: at(0), value: 1.25 }]);
    const table = decodePayload(buildBirth({ metrics: [{ name: 'T', datatype: DataType.DataSet, value: dataset }] }));
    expect(table.metrics[0]!.raw.kind).toBe('dataset');
    expect(table.metrics[0]!.value).toMatchObject({ columns: ['a'], types: [DataType.Int32], rows });
  });

  it('dead-letters birth metrics without a name but keeps the rest of the birth', () => {
    const s = new SparkplugState();
    const payload = encodePayload({
      seq: 0,
      metrics: [
        { alias: 7, datatype: DataType.Double, value: 1 },
        { name: 'ok', alias: 8, datatype: DataType.Double, value: 2 },
      ],
    });
    const r = s.handle(topic('NBIRTH'), payload, at(0));
    expect(r.values.map((v) => [v.metric, v.value])).toEqual([['ok', 2]]);
    expect(r.deadLetters).toEqual([
      {
        reason: 'SPARKPLUG_PROTOCOL',
        detail: 'NBIRTH: metric with alias 7 has no name',
        topic: topic('NBIRTH'),
        payload,
      },
    ]);
    expect(r.rebirth).toBeUndefined();
  });

  it('falls back to receivedAt when neither metric nor payload has a timestamp', () => {
    const { s } = bornNode();
    const metric = { alias: 1, datatype: DataType.Float, omitDatatype: true, value: 11.5 };
    const payload = encodePayload({ seq: 2, metrics: [metric] });
    const r = s.handle(topic('NDATA'), payload, at(9000));
    expect(r.values).toEqual([{ group: G, node: N, metric: 'Supply Voltage', ts: at(9000), value: 11.5 }]);
  });

  it('turns a UInt64 beyond 2^53 into the nearest number', () => {
    const s = new SparkplugState();
    const big = { name: 'big', alias: 1, datatype: DataType.UInt64, value: 0 };
    s.handle(topic('NBIRTH'), buildBirth({ bdSeq: 0, timestamp: T0, metrics: [big] }), at(0));
    const r = s.handle(topic('NDATA'), data(1, { alias: 1, datatype: DataType.UInt64, value: 2n ** 60n + 1n }), at(1));
    expect(r.values.map((v) => v.value)).toEqual([2 ** 60]);
  });

  it('reports a seq gap and asks for a rebirth, and still uses the message', () => {
    const { s } = bornNode();
    const r = s.handle(
      topic('DDATA', D),
      buildData({ seq: 5, timestamp: T0 + 10, metrics: [{ alias: 12, datatype: DataType.UInt64, value: 9 }] }),
      at(10),
    );
    expect(r.seqGap).toEqual({ group: G, node: N, expected: 2, got: 5 });
    expect(rebirthMetric(r)).toMatchObject({ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true });
    expect(r.values).toEqual([{ group: G, node: N, device: D, metric: 'Count', ts: at(10), value: 9 }]);
    expect(r.deadLetters).toEqual([]);
    // The stream continues from the seq it actually got.
    const next = s.handle(topic('NDATA'), buildData({ seq: 6, metrics: [] }), at(11));
    expect(next.seqGap).toBeUndefined();
    expect(s.nodeStatus(G, N)?.lastSeq).toBe(6);
  });

  it('wraps seq 255 → 0 without a gap, and 255 → 1 is one', () => {
    const { s } = bornNode();
    for (let seq = 2; seq <= 255; seq++) {
      const r = s.handle(topic('NDATA'), buildData({ seq, metrics: [] }), at(seq));
      expect(r.seqGap).toBeUndefined();
    }
    const wrapped = s.handle(topic('NDATA'), buildData({ seq: 0, metrics: [] }), at(300));
    expect(wrapped.seqGap).toBeUndefined();
    expect(wrapped.rebirth).toBeUndefined();

    const { s: s2 } = bornNode();
    for (let seq = 2; seq <= 255; seq++) s2.handle(topic('NDATA'), buildData({ seq, metrics: [] }), at(seq));
    const skipped = s2.handle(topic('NDATA'), buildData({ seq: 1, metrics: [] }), at(300));
    expect(skipped.seqGap).toEqual({ group: G, node: N, expected: 0, got: 1 });
  });

  it('dead-letters unknown aliases with the raw payload, asks for a rebirth, and keeps the known ones', () => {
    const { s } = bornNode();
    const payload = buildData({
      seq: 2,
      timestamp: T0 + 20,
      metrics: [
        { alias: 99, datatype: DataType.Double, value: 1 },
        { alias: 10, datatype: DataType.Float, value: 70 },
        { alias: 98, datatype: DataType.Double, value: 2 },
      ],
    });
    const r = s.handle(topic('DDATA', D), payload, at(20));
    expect(r.values).toEqual([{ group: G, node: N, device: D, metric: 'Temperature', ts: at(20), value: 70 }]);
    expect(r.deadLetters).toEqual([
      {
        reason: 'SPARKPLUG_PROTOCOL',
        detail: 'unknown alias 99, 98 (not in the DBIRTH)',
        topic: topic('DDATA', D),
        payload,
      },
    ]);
    expect(rebirthMetric(r).value).toBe(true);
    expect(r.seqGap).toBeUndefined();
  });

  it('dead-letters data before any birth and asks for one', () => {
    const s = new SparkplugState();
    const payload = buildData({ seq: 4, metrics: [{ alias: 1, datatype: DataType.Double, value: 1 }] });
    const r = s.handle(topic('NDATA'), payload, at(0));
    expect(r.values).toEqual([]);
    expect(r.deadLetters).toEqual([
      { reason: 'SPARKPLUG_PROTOCOL', detail: 'NDATA before NBIRTH', topic: topic('NDATA'), payload },
    ]);
    expect(rebirthMetric(r)).toMatchObject({ name: 'Node Control/Rebirth', value: true });

    const s2 = new SparkplugState();
    const d = s2.handle(topic('DDATA', D), payload, at(0));
    expect(d.deadLetters.map((x) => x.detail)).toEqual(['DDATA before NBIRTH']);
    expect(d.rebirth?.topic).toBe(`spBv1.0/${G}/NCMD/${N}`);
  });

  it('dead-letters DDATA of a device without DBIRTH, counting its seq', () => {
    const s = new SparkplugState();
    s.handle(topic('NBIRTH'), buildBirth({ bdSeq: 1, metrics: [] }), at(0));
    const r = s.handle(topic('DDATA', 'other'), data(1, float(10, 1)), at(1));
    expect(r.deadLetters.map((x) => [x.reason, x.detail])).toEqual([['SPARKPLUG_PROTOCOL', 'DDATA before DBIRTH']]);
    expect(r.rebirth).toBeDefined();
    expect(r.seqGap).toBeUndefined();
    expect(s.nodeStatus(G, N)?.lastSeq).toBe(1);
  });

  it('NBIRTH starts a new session: aliases rebound, device births void, seq back to 0', () => {
    const { s } = bornNode({ rebirthIntervalMs: 0 });
    s.handle(topic('NDATA'), buildData({ seq: 2, metrics: [] }), at(2));
    const nb = s.handle(
      topic('NBIRTH'),
      buildBirth({
        bdSeq: 4,
        timestamp: T0 + 100,
        metrics: [{ name: 'Frequency', alias: 1, datatype: DataType.Double, value: 50 }],
      }),
      at(100),
    );
    expect(nb.values).toEqual([{ group: G, node: N, metric: 'Frequency', ts: at(100), value: 50 }]);
    expect(s.nodeStatus(G, N)).toEqual({ online: true, bdSeq: 4, lastSeq: 0, devices: {} });

    const r = s.handle(topic('NDATA'), data(1, { alias: 1, datatype: DataType.Double, value: 49.9 }), at(101));
    expect(r.seqGap).toBeUndefined();
    expect(r.values).toEqual([{ group: G, node: N, metric: 'Frequency', ts: at(1), value: 49.9 }]);

    // The device's aliases from the old session are gone until its DBIRTH.
    const d = s.handle(topic('DDATA', D), data(2, float(10, 1)), at(102));
    expect(d.values).toEqual([]);
    expect(d.deadLetters.map((x) => x.detail)).toEqual(['DDATA before DBIRTH']);
    expect(d.rebirth).toBeDefined();
  });

  it("NDEATH with the birth's bdSeq makes the node stale; after it, data needs a new birth", () => {
    const { s } = bornNode();
    const r = s.handle(topic('NDEATH'), buildDeath({ bdSeq: 3 }), at(50));
    expect(r).toEqual({ values: [], deadLetters: [], stale: { group: G, node: N } });
    expect(s.nodeStatus(G, N)).toEqual({
      online: false,
      bdSeq: 3,
      lastSeq: undefined,
      devices: { [D]: { online: false } },
    });

    const after = s.handle(topic('DDATA', D), data(2, float(10, 1)), at(51));
    expect(after.values).toEqual([]);
    expect(after.deadLetters.map((x) => x.detail)).toEqual(['DDATA before NBIRTH']);
    expect(after.rebirth).toBeDefined();
    // A second Will for the same session changes nothing.
    expect(s.handle(topic('NDEATH'), buildDeath({ bdSeq: 3 }), at(52)).stale).toBeUndefined();
  });

  it("ignores an NDEATH whose bdSeq is not the birth's (a late Will from an earlier session)", () => {
    const { s } = bornNode();
    const r = s.handle(topic('NDEATH'), buildDeath({ bdSeq: 2 }), at(50));
    expect(r).toEqual({ values: [], deadLetters: [] });
    expect(s.nodeStatus(G, N)?.online).toBe(true);
    const r2 = s.handle(topic('DDATA', D), data(2, { alias: 12, datatype: DataType.UInt64, value: 5 }), at(51));
    expect(r2.values.map((v) => [v.metric, v.value])).toEqual([['Count', 5]]);
  });

  it('DDEATH makes that device stale, not the node', () => {
    const { s } = bornNode();
    const r = s.handle(topic('DDEATH', D), buildDeath({ seq: 2 }), at(60));
    expect(r).toEqual({ values: [], deadLetters: [], stale: { group: G, node: N, device: D } });
    expect(s.nodeStatus(G, N)).toMatchObject({ online: true, lastSeq: 2, devices: { [D]: { online: false } } });
    const nodeData = s.handle(topic('NDATA'), data(3, float(1, 12)), at(61));
    expect(nodeData.values.map((v) => v.value)).toEqual([12]);
    const devData = s.handle(topic('DDATA', D), data(4, float(10, 1)), at(62));
    expect(devData.deadLetters.map((x) => x.detail)).toEqual(['DDATA before DBIRTH']);
  });

  it('dead-letters garbage as MALFORMED_PAYLOAD with topic and bytes, and never throws', () => {
    const { s } = bornNode();
    const garbage = Buffer.from('{"temperature": 21.5}');
    const r = s.handle(topic('DDATA', D), garbage, at(70));
    expect(r.values).toEqual([]);
    expect(r.deadLetters).toHaveLength(1);
    expect(r.deadLetters[0]).toMatchObject({ reason: 'MALFORMED_PAYLOAD', topic: topic('DDATA', D), payload: garbage });
    expect(r.deadLetters[0]!.detail).toMatch(/^not a Sparkplug B protobuf: /);

    // Random bytes and every truncation of a valid message: a result every time, never an exception.
    const valid = data(2, float(10, 1), { alias: 12, datatype: DataType.UInt64, value: 2n ** 63n });
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 16) & 0xff;
    };
    const inputs: Buffer[] = [];
    for (let i = 0; i < valid.length; i++) inputs.push(valid.subarray(0, i));
    for (let i = 0; i < 500; i++) inputs.push(Buffer.from(Array.from({ length: 1 + (i % 64) }, rand)));
    const allTopics = [
      ...['NBIRTH', 'NDATA', 'NDEATH'].map((x) => topic(x)),
      ...['DBIRTH', 'DDATA', 'DDEATH'].map((x) => topic(x, D)),
    ];
    let malformed = 0;
    for (const buf of inputs) {
      for (const t of allTopics) {
        const res = s.handle(t, buf, at(80));
        expect(Array.isArray(res.values) && Array.isArray(res.deadLetters)).toBe(true);
        malformed += res.deadLetters.filter((x) => x.reason === 'MALFORMED_PAYLOAD').length;
      }
    }
    expect(malformed).toBeGreaterThan(100);
  });

  it('dead-letters bad topics and ignores commands and host STATE', () => {
    const s = new SparkplugState();
    const payload = buildData({ seq: 0, metrics: [] });
    const badTopics = [
      'spBv1.0/G/NDATA',
      'spBv1.0/G/NDATA/E/extra',
      'spBv1.0/G/DDATA/E',
      'spBv1.0/G/FOO/E',
      'spAv1.0/G/NDATA/E',
      'spBv1.0//NDATA/E',
    ];
    for (const bad of badTopics) {
      const r = s.handle(bad, payload, at(0));
      expect(r.deadLetters.map((x) => [x.reason, x.topic])).toEqual([['SPARKPLUG_PROTOCOL', bad]]);
      expect(r.deadLetters[0]!.detail).toMatch(/^bad topic: /);
      expect(r.rebirth).toBeUndefined();
    }
    for (const ignored of ['spBv1.0/G/NCMD/E', 'spBv1.0/G/DCMD/E/D', 'spBv1.0/STATE/host-1', 'STATE/scada']) {
      expect(s.handle(ignored, Buffer.from('{"online":true}'), at(0))).toEqual({ values: [], deadLetters: [] });
    }
  });

  it('asks a node for a rebirth at most once per interval (default 5 s), per node', () => {
    const s = new SparkplugState();
    const ndata = (seq: number) => buildData({ seq, metrics: [{ alias: 1, datatype: DataType.Double, value: 1 }] });
    expect(s.handle(topic('NDATA'), ndata(1), at(0)).rebirth).toBeDefined();
    const second = s.handle(topic('NDATA'), ndata(2), at(4999));
    expect(second.rebirth).toBeUndefined();
    expect(second.deadLetters.map((x) => x.detail)).toEqual(['NDATA before NBIRTH']);
    expect(s.handle(topic('NDATA'), ndata(3), at(5000)).rebirth).toBeDefined();
    // Another node has its own budget.
    const other = s.handle(`spBv1.0/${G}/NDATA/edge-08`, ndata(1), at(5001));
    expect(other.rebirth?.topic).toBe(`spBv1.0/${G}/NCMD/edge-08`);
    // Seq gaps share the budget with the other reasons.
    s.handle(topic('NBIRTH'), buildBirth({ bdSeq: 0, metrics: [] }), at(5002));
    const gap = s.handle(topic('NDATA'), buildData({ seq: 9, metrics: [] }), at(5003));
    expect(gap.seqGap).toEqual({ group: G, node: N, expected: 1, got: 9 });
    expect(gap.rebirth).toBeUndefined();
  });

  it('takes the rebirth interval from the options', () => {
    const { s } = bornNode({ rebirthIntervalMs: 1000 });
    const gap = (seq: number, ms: number) => s.handle(topic('NDATA'), buildData({ seq, metrics: [] }), at(ms));
    expect(gap(10, 100).rebirth).toBeDefined();
    expect(gap(20, 1099).rebirth).toBeUndefined();
    expect(gap(30, 1100).rebirth).toBeDefined();
  });
});
