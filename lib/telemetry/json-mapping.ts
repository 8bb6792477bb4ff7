import type { JsonMapping } from '../config/json-mapping.ts';
import { getter } from '../dot-path.ts';
import type { DeadLetter, IncomingReading } from './types.ts';

export interface MappingContext {
  /** The MQTT topic split on '/', for `sensorId.topicSegment`. */
  topicSegments?: string[];
  receivedAt: Date;
  /** Readings stamped later than receivedAt + this are refused (a device clock gone wrong). Default 5 min. */
  maxFutureMs?: number;
  /** Put on every reading (the message it came from), so the pipeline can dead-letter it with its raw payload. */
  origin?: IncomingReading['origin'];
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return undefined;
}

function readTimestamp(m: JsonMapping, doc: unknown, ctx: MappingContext): Date | string {
  if (!m.timestamp) return ctx.receivedAt;
  const raw = getter(m.timestamp.path)(doc);
  if (raw === undefined || raw === null) return `no timestamp at ${m.timestamp.path}`;
  let ms: number;
  if (m.timestamp.format === 'iso') ms = typeof raw === 'string' ? Date.parse(raw) : NaN;
  else {
    const n = toNumber(raw);
    ms = n === undefined ? NaN : m.timestamp.format === 'epoch_s' ? n * 1000 : n;
  }
  if (!Number.isFinite(ms)) return `timestamp ${JSON.stringify(raw)} is not a ${m.timestamp.format} time`;
  if (ms < 0) return `timestamp ${JSON.stringify(raw)} is before 1970`;
  if (ms > ctx.receivedAt.getTime() + (ctx.maxFutureMs ?? 300_000))
    return `timestamp ${JSON.stringify(raw)} is in the future`;
  return new Date(ms);
}

/**
 * Applies a mapping to a parsed document. Every value either becomes a reading or a dead letter with its reason;
 * one bad value does not lose the others of the same document.
 */
export function applyMapping(
  m: JsonMapping,
  doc: unknown,
  ctx: MappingContext,
  /** Readings are appended here (the caller's batch), saving an array per message on the hot path. */
  readings: IncomingReading[] = [],
): { readings: IncomingReading[]; deadLetters: DeadLetter[] } {
  const deadLetters: DeadLetter[] = [];
  let base: string | undefined;
  if (m.sensorId && 'path' in m.sensorId) {
    const v = getter(m.sensorId.path)(doc);
    base = typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
  } else if (m.sensorId && 'topicSegment' in m.sensorId) base = ctx.topicSegments?.[m.sensorId.topicSegment];
  else if (m.sensorId) base = m.sensorId.value;
  if (m.sensorId && !base) {
    return {
      readings,
      deadLetters: [{ reason: 'UNMAPPABLE_PAYLOAD', detail: `no sensor id at ${describe(m.sensorId)}` }],
    };
  }
  const ts = readTimestamp(m, doc, ctx);
  if (typeof ts === 'string')
    return { readings, deadLetters: [{ reason: 'INVALID_TIMESTAMP', detail: ts, sensorId: base }] };
  let sourceQuality: number | undefined;
  if (m.quality) {
    const q = toNumber(getter(m.quality.path)(doc));
    if (q === undefined || !(q >= 0 && q <= 100)) {
      return {
        readings,
        deadLetters: [
          {
            reason: 'UNMAPPABLE_PAYLOAD',
            detail: `quality at ${m.quality.path} is not a number from 0 to 100`,
            sensorId: base,
          },
        ],
      };
    }
    sourceQuality = q;
  }
  let unit: string | undefined;
  if (m.unit) {
    const u = getter(m.unit.path)(doc);
    if (typeof u !== 'string' || !u)
      return {
        readings,
        deadLetters: [{ reason: 'UNKNOWN_UNIT', detail: `no unit at ${m.unit.path}`, sensorId: base }],
      };
    unit = u;
  }
  const several = m.values.length > 1;
  for (const v of m.values) {
    const sensorId = v.sensorId ? v.sensorId.replaceAll('{base}', base ?? '') : several ? `${base}.${v.path}` : base!;
    const raw = getter(v.path)(doc);
    if (raw === undefined || raw === null) {
      deadLetters.push({ reason: 'UNMAPPABLE_PAYLOAD', detail: `no value at ${v.path}`, sensorId });
      continue;
    }
    const value = toNumber(raw);
    if (value === undefined || !Number.isFinite(value)) {
      deadLetters.push({
        reason: 'INVALID_VALUE',
        detail: `value ${JSON.stringify(raw)} at ${v.path} is not a finite number`,
        sensorId,
      });
      continue;
    }
    // One object shape for every reading (V8 keeps the pipeline's property reads monomorphic).
    readings.push({ sensorId, ts, value, sourceQuality, unit, origin: ctx.origin });
  }
  return { readings, deadLetters };
}

function describe(s: NonNullable<JsonMapping['sensorId']>): string {
  return 'path' in s ? s.path : 'topicSegment' in s ? `topic segment ${s.topicSegment}` : 'value';
}
