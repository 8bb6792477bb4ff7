/**
 * Sparkplug B payload codec: protobuf bytes ⇄ plain objects, with values read by Sparkplug datatype.
 *
 * The wire only has uint32/uint64 for integers; the datatype says how to read them. We keep the raw field
 * (`RawValue`) next to the interpreted value because DATA messages usually omit `datatype` (the spec says they
 * SHOULD NOT repeat it), so the consumer has to re-read the raw field with the datatype from the birth.
 */
import type protobuf from 'protobufjs';
import { DataType, PayloadType } from './proto.ts';

/** An alias or other uint64 id: a number while exact, a bigint above 2^53 so two aliases never collide. */
export type U64 = number | bigint;

/** The oneof value field as it came off the wire, before any datatype is applied. */
export type RawValue =
  | { kind: 'int'; value: number } // uint32
  | { kind: 'long'; lo: number; hi: number } // uint64 as two unsigned 32-bit halves
  | { kind: 'float'; value: number }
  | { kind: 'double'; value: number }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'string'; value: string }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'dataset'; value: object } // protobufjs message, passed through untouched
  | { kind: 'template'; value: object }
  | { kind: 'extension' }
  | { kind: 'none' };

export type MetricValue = number | bigint | boolean | string | Uint8Array | null | undefined | object;

export interface DecodedMetric {
  name?: string;
  alias?: U64;
  /** ms since the epoch */
  timestamp?: number;
  datatype?: number;
  isHistorical: boolean;
  isTransient: boolean;
  isNull: boolean;
  raw: RawValue;
  /** `raw` read with this metric's own `datatype` (or, without one, by wire field: unsigned ints). */
  value: MetricValue;
}

export interface DecodedPayload {
  timestamp?: number;
  seq?: U64;
  uuid?: string;
  body?: Uint8Array;
  metrics: DecodedMetric[];
}

// protobufjs hands uint64 back as a long.js Long when `long` is installed (it is, as its dependency), else as a
// number; accept both so a different install layout cannot break decoding.
type PbU64 = number | protobuf.Long;

interface PbMetric {
  name?: string;
  alias?: PbU64;
  timestamp?: PbU64;
  datatype?: number;
  isHistorical?: boolean;
  isTransient?: boolean;
  isNull?: boolean;
  intValue?: number;
  longValue?: PbU64;
  floatValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
  bytesValue?: Uint8Array;
  datasetValue?: object;
  templateValue?: object;
  /** protobufjs' oneof getter: the name of the value field that is set. */
  value?: string;
}

interface PbPayload {
  timestamp?: PbU64;
  metrics: PbMetric[];
  seq?: PbU64;
  uuid?: string;
  body?: Uint8Array;
}

const TWO_32 = 4294967296;
// Above this high word an unsigned 64-bit value no longer fits a double exactly (2^53 = 2^21 · 2^32).
const MAX_EXACT_HI = 0x1fffff;

function u64Parts(v: PbU64): { lo: number; hi: number } {
  if (typeof v === 'number') return { lo: v >>> 0, hi: Math.floor(v / TWO_32) >>> 0 };
  return { lo: v.low >>> 0, hi: v.high >>> 0 };
}

function unsigned64(lo: number, hi: number): number | bigint {
  if (hi <= MAX_EXACT_HI) return hi * TWO_32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function signed64(lo: number, hi: number): number | bigint {
  const shi = hi | 0;
  // Negative values down to -2^53 are still exact as a double: high word ≥ -2^21.
  if (shi >= -(MAX_EXACT_HI + 1) && shi <= MAX_EXACT_HI) return shi * TWO_32 + lo;
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

function u64(v: PbU64): U64 {
  if (typeof v === 'number') return v;
  return unsigned64(v.low >>> 0, v.high >>> 0);
}

/** uint64 fields used as times or counters: a bigint there would be nonsense, so it is rounded to a number. */
function u64Number(v: PbU64): number {
  return Number(u64(v));
}

/**
 * The shortest decimal that is the same float32 (what Java's Float.toString prints): the wire float 72.1 reads
 * back as 72.0999984741211 in a double, and we would rather store 72.1. Both are the same float32, so no
 * information is lost or invented.
 */
export function shortestFloat32(f: number): number {
  if (!Number.isFinite(f) || f === 0) return f;
  // Any decimal of ≤ 6 significant digits survives float32 (FLT_DIG), and rounding f to 6 digits gives back
  // that shorter decimal when there is one, so the search starts at 6; 9 digits always round-trip. (Subnormals,
  // below 1.2e-38, may keep a digit more than strictly needed; still the same float32.)
  for (let p = 6; p <= 9; p++) {
    const c = Number(f.toPrecision(p));
    if (Math.fround(c) === f) return c;
  }
  return f;
}

/**
 * Reads a raw value field with a Sparkplug datatype. Negative Int8/16/32 travel as two's complement in the
 * uint32 field; senders differ on the width (Tahu Java and JS sign-extend to 32 bits: Int8 -1 → 0xFFFFFFFF,
 * others send 0xFF), so we sign-extend from the datatype's own width, which reads both right. Int64 travels as
 * 64-bit two's complement in uint64. Small ints found in `long_value` (Tahu JS writes UInt32 there) are read the
 * same way. Values outside ±2^53 come back as bigint.
 */
export function interpretValue(raw: RawValue, datatype: number | undefined): MetricValue {
  switch (raw.kind) {
    case 'int':
      return intByType(raw.value, datatype);
    case 'long':
      return longByType(raw.lo, raw.hi, datatype);
    case 'float':
      return shortestFloat32(raw.value);
    case 'double':
    case 'boolean':
    case 'string':
    case 'bytes':
    case 'dataset':
    case 'template':
      return raw.value;
    case 'extension':
    case 'none':
      return undefined;
  }
}

function intByType(u32: number, datatype: number | undefined): number {
  switch (datatype) {
    case DataType.Int8:
      return (u32 << 24) >> 24;
    case DataType.Int16:
      return (u32 << 16) >> 16;
    case DataType.Int32:
    case DataType.Int64:
      return u32 | 0;
    default:
      return u32;
  }
}

function longByType(lo: number, hi: number, datatype: number | undefined): number | bigint {
  switch (datatype) {
    case DataType.Int8:
      return (lo << 24) >> 24;
    case DataType.Int16:
      return (lo << 16) >> 16;
    case DataType.Int32:
      return lo | 0;
    case DataType.Int64:
      return signed64(lo, hi);
    default:
      return unsigned64(lo, hi);
  }
}

function rawValueOf(m: PbMetric): RawValue {
  switch (m.value) {
    case 'intValue':
      return { kind: 'int', value: m.intValue! };
    case 'longValue': {
      const { lo, hi } = u64Parts(m.longValue!);
      return { kind: 'long', lo, hi };
    }
    case 'floatValue':
      return { kind: 'float', value: m.floatValue! };
    case 'doubleValue':
      return { kind: 'double', value: m.doubleValue! };
    case 'booleanValue':
      return { kind: 'boolean', value: m.booleanValue! };
    case 'stringValue':
      return { kind: 'string', value: m.stringValue! };
    case 'bytesValue':
      return { kind: 'bytes', value: m.bytesValue! };
    case 'datasetValue':
      return { kind: 'dataset', value: m.datasetValue! };
    case 'templateValue':
      return { kind: 'template', value: m.templateValue! };
    case 'extensionValue':
      return { kind: 'extension' };
    default:
      return { kind: 'none' };
  }
}

const has = Object.hasOwn;

/** Decodes a Sparkplug B payload. Throws (protobufjs' RangeError/Error) when the bytes are not that protobuf. */
export function decodePayload(buf: Uint8Array): DecodedPayload {
  const p = PayloadType.decode(buf) as unknown as PbPayload;
  const metrics: DecodedMetric[] = new Array(p.metrics.length);
  for (let i = 0; i < p.metrics.length; i++) {
    const m = p.metrics[i]!;
    const raw = rawValueOf(m);
    // Decoded messages carry only the fields present on the wire as own properties; the rest are prototype
    // defaults (e.g. alias = Long 0), which must not be mistaken for "alias 0".
    const datatype = has(m, 'datatype') ? m.datatype : undefined;
    const metric: DecodedMetric = {
      isHistorical: m.isHistorical === true,
      isTransient: m.isTransient === true,
      isNull: m.isNull === true,
      raw,
      value: interpretValue(raw, datatype),
    };
    if (has(m, 'name')) metric.name = m.name;
    if (has(m, 'alias')) metric.alias = u64(m.alias!);
    if (has(m, 'timestamp')) metric.timestamp = u64Number(m.timestamp!);
    if (datatype !== undefined) metric.datatype = datatype;
    metrics[i] = metric;
  }
  const out: DecodedPayload = { metrics };
  if (has(p, 'timestamp')) out.timestamp = u64Number(p.timestamp!);
  if (has(p, 'seq')) out.seq = u64(p.seq!);
  if (has(p, 'uuid')) out.uuid = p.uuid;
  if (has(p, 'body')) out.body = p.body;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding (rebirth commands, tests, benchmarks)

export interface MetricInput {
  name?: string;
  alias?: U64;
  timestamp?: number | Date;
  /** Picks the wire field for `value`; written unless `omitDatatype`. */
  datatype: number;
  /** DATA messages SHOULD NOT repeat the datatype (Sparkplug 3.0); consumers take it from the birth. */
  omitDatatype?: boolean;
  /**
   * Ints as number or bigint (negative ones are written two's complement, sign-extended to 32 bits for
   * Int8/16/32 like Tahu does); DataSet/Template as a protobufjs-shaped plain object; null → is_null.
   */
  value: MetricValue;
  isHistorical?: boolean;
  isTransient?: boolean;
}

export interface PayloadInput {
  timestamp?: number | Date;
  seq?: number;
  uuid?: string;
  body?: Uint8Array;
  metrics: MetricInput[];
}

// What protobufjs' writer accepts for a uint64: a number or {low, high} (it reads the halves with >>> 0).
type WireU64 = number | { low: number; high: number };

function wireU64(v: number | bigint | Date): WireU64 {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new RangeError(`not an integer: ${v}`);
    if (Number.isSafeInteger(v)) return v;
    v = BigInt(v);
  }
  if (v < -(1n << 63n) || v >= 1n << 64n) throw new RangeError(`out of 64-bit range: ${v}`);
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn), high: Number(u >> 32n) };
}

const INT_RANGES: Partial<Record<number, readonly [number, number]>> = {
  [DataType.Int8]: [-128, 127],
  [DataType.Int16]: [-32768, 32767],
  [DataType.Int32]: [-2147483648, 2147483647],
  [DataType.UInt8]: [0, 255],
  [DataType.UInt16]: [0, 65535],
  [DataType.UInt32]: [0, 4294967295],
};

function setValue(out: Record<string, unknown>, datatype: number, value: MetricValue): void {
  const range = INT_RANGES[datatype];
  if (range) {
    const n = Number(value);
    if (!Number.isInteger(n) || n < range[0] || n > range[1]) {
      throw new RangeError(`value ${String(value)} does not fit datatype ${datatype}`);
    }
    out.intValue = n >>> 0;
    return;
  }
  switch (datatype) {
    case DataType.Int64:
    case DataType.UInt64:
    case DataType.DateTime: {
      const v = value instanceof Date ? value : typeof value === 'bigint' ? value : Number(value);
      if (datatype === DataType.UInt64 && (typeof v === 'bigint' ? v < 0n : typeof v === 'number' && v < 0)) {
        throw new RangeError(`negative UInt64: ${String(value)}`);
      }
      if (datatype === DataType.Int64 && typeof v === 'bigint' && v >= 1n << 63n) {
        throw new RangeError(`out of Int64 range: ${v}`);
      }
      out.longValue = wireU64(v);
      return;
    }
    case DataType.Float:
      out.floatValue = Number(value);
      return;
    case DataType.Double:
      out.doubleValue = Number(value);
      return;
    case DataType.Boolean:
      out.booleanValue = Boolean(value);
      return;
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      out.stringValue = String(value);
      return;
    case DataType.Bytes:
    case DataType.File:
      out.bytesValue = value as Uint8Array;
      return;
    case DataType.DataSet:
      out.datasetValue = value;
      return;
    case DataType.Template:
      out.templateValue = value;
      return;
    default:
      throw new RangeError(`cannot encode datatype ${datatype}`);
  }
}

function metricToWire(m: MetricInput): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (m.name !== undefined) out.name = m.name;
  if (m.alias !== undefined) out.alias = wireU64(m.alias);
  if (m.timestamp !== undefined) out.timestamp = wireU64(m.timestamp);
  if (!m.omitDatatype) out.datatype = m.datatype;
  if (m.isHistorical) out.isHistorical = true;
  if (m.isTransient) out.isTransient = true;
  if (m.value === null || m.value === undefined) out.isNull = true;
  else setValue(out, m.datatype, m.value);
  return out;
}

/** Encodes a Sparkplug B payload. Throws RangeError on values that do not fit their datatype. */
export function encodePayload(p: PayloadInput): Buffer {
  const wire: Record<string, unknown> = { metrics: p.metrics.map(metricToWire) };
  if (p.timestamp !== undefined) wire.timestamp = wireU64(p.timestamp);
  if (p.seq !== undefined) wire.seq = wireU64(p.seq);
  if (p.uuid !== undefined) wire.uuid = p.uuid;
  if (p.body !== undefined) wire.body = p.body;
  const bytes = PayloadType.encode(wire).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
