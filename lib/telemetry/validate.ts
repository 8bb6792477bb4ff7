import type { RangeRuleRow } from '../db/rows.ts';
import type { SeriesInfo } from './caches.ts';
import type { NewAlert } from './pipeline.repo.ts';
import type { DeadLetterReason, IncomingReading } from './types.ts';

/**
 * The pipeline's validation stage as pure functions: what a reading, its sensor and its range rule say, with no
 * state and no I/O. The pipeline keeps the state (which series are in violation, the last value per series) and
 * calls these in order: refusal, then judge, then isRepeat.
 */

export interface Refusal {
  reason: DeadLetterReason;
  detail: string;
}

/** Why the sensor cannot take this reading at all (unknown or inactive sensor, another unit, not a finite number). */
export function refusal(r: IncomingReading, s: SeriesInfo | undefined): Refusal | undefined {
  if (!s) return { reason: 'UNKNOWN_SENSOR', detail: `no sensor ${r.sensorId} is registered` };
  if (!s.isActive) return { reason: 'UNKNOWN_SENSOR', detail: `sensor ${r.sensorId} is inactive` };
  if (r.unit !== undefined && r.unit !== s.unit) {
    const detail = `unit ${JSON.stringify(r.unit)} is not the sensor's unit ${JSON.stringify(s.unit)}`;
    return { reason: 'UNKNOWN_UNIT', detail };
  }
  // Sources check their own values, but not all can (a Sparkplug double may be NaN): one guard for all, as a NaN
  // would poison the rollups and the live channel's JSON.
  if (!Number.isFinite(r.value)) return { reason: 'INVALID_VALUE', detail: `value ${r.value} is not a finite number` };
  return undefined;
}

export interface Judgement {
  /** The value is outside the rule's range. */
  outside: boolean;
  /** The rule's action is REJECT and the value is outside: a dead letter, not a reading. */
  rejected: boolean;
  /** The quality to store: the source's (100 when it says none), lowered by a DEGRADE rule the value breaks. */
  quality: number;
}

/** What the sensor's range rule (if any) says of a value. */
export function judge(
  value: number,
  sourceQuality: number | undefined,
  rule: RangeRuleRow | undefined,
  degradedQuality: number,
): Judgement {
  const quality = sourceQuality ?? 100;
  if (!rule) return { outside: false, rejected: false, quality };
  const outside = value < rule.minValue || value > rule.maxValue;
  return {
    outside,
    rejected: outside && rule.action === 'REJECT',
    quality: outside && rule.action === 'DEGRADE' ? Math.min(quality, degradedQuality) : quality,
  };
}

/** The dead letter's detail for a value a REJECT rule refused. */
export const rejectedDetail = (value: number, s: SeriesInfo, rule: RangeRuleRow): string =>
  `${value} ${s.unit} outside ${rule.minValue}..${rule.maxValue}`;

/** The alert raised when a series enters violation (not for every reading while it stays outside). */
export function outOfRangeAlert(s: SeriesInfo, r: IncomingReading, rule: RangeRuleRow): NewAlert {
  return {
    machineId: s.machineId,
    sensorId: s.tagMappingId ? null : s.sensorId,
    type: 'OUT_OF_RANGE',
    severity: rule.action === 'DEGRADE' ? 'INFO' : 'WARNING',
    ts: r.ts,
    metric: s.signal,
    value: r.value,
    expectedMin: rule.minValue,
    expectedMax: rule.maxValue,
    message: `${s.signal} ${r.value} ${s.unit} outside ${rule.minValue}..${rule.maxValue} (${rule.action})`,
  };
}

/**
 * Whether a reading repeats its series' previous one: the same value at another timestamp within `windowMs`
 * (0: never). The same timestamp again is a redelivery, which storage makes a no-op, not a repeat.
 */
export function isRepeat(
  prev: { ts: number; value: number } | undefined,
  ts: number,
  value: number,
  windowMs: number,
): boolean {
  return (
    windowMs > 0 && prev !== undefined && prev.value === value && prev.ts !== ts && Math.abs(ts - prev.ts) < windowMs
  );
}
