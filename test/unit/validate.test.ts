import { describe, expect, it } from 'vitest';
import type { RangeRuleRow } from '../../lib/db/rows.ts';
import type { SeriesInfo } from '../../lib/telemetry/caches.ts';
import type { IncomingReading } from '../../lib/telemetry/types.ts';
import { isRepeat, judge, outOfRangeAlert, refusal } from '../../lib/telemetry/validate.ts';

const series: SeriesInfo = {
  seriesId: 7,
  sensorId: 'M-1-TEMP',
  machineId: 'M-1',
  lineId: 'LINE-1',
  signal: 'temperature',
  unit: 'degC',
  isActive: true,
  scale: 1,
  offset: 0,
};
const reading = (value: number, more: Partial<IncomingReading> = {}): IncomingReading => ({
  sensorId: 'M-1-TEMP',
  ts: new Date('2030-01-01T00:00:00Z'),
  value,
  ...more,
});
const rule = (action: RangeRuleRow['action']): RangeRuleRow => ({
  id: 'r1',
  machineId: 'M-1',
  sensorId: 'M-1-TEMP',
  signalType: 'temperature',
  minValue: 10,
  maxValue: 90,
  unit: 'degC',
  action,
  isActive: true,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

describe('refusal', () => {
  it('takes a reading its active sensor can hold', () => {
    expect(refusal(reading(20), series)).toBeUndefined();
    expect(refusal(reading(20, { unit: 'degC' }), series)).toBeUndefined();
  });

  it('refuses an unknown or inactive sensor, another unit, and a value that is not a finite number', () => {
    expect(refusal(reading(20), undefined)).toEqual({
      reason: 'UNKNOWN_SENSOR',
      detail: 'no sensor M-1-TEMP is registered',
    });
    expect(refusal(reading(20), { ...series, isActive: false })).toEqual({
      reason: 'UNKNOWN_SENSOR',
      detail: 'sensor M-1-TEMP is inactive',
    });
    expect(refusal(reading(20, { unit: 'degF' }), series)).toEqual({
      reason: 'UNKNOWN_UNIT',
      detail: 'unit "degF" is not the sensor\'s unit "degC"',
    });
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(refusal(reading(v), series)?.reason).toBe('INVALID_VALUE');
    }
  });

  it('checks the sensor before the value: an unknown sensor is the reason even for NaN', () => {
    expect(refusal(reading(Number.NaN), undefined)?.reason).toBe('UNKNOWN_SENSOR');
  });
});

describe('judge', () => {
  it("keeps the source's quality (100 when it says none) when there is no rule or the value is inside", () => {
    expect(judge(50, undefined, undefined, 50)).toEqual({ outside: false, rejected: false, quality: 100 });
    expect(judge(50, 80, rule('DEGRADE'), 50)).toEqual({ outside: false, rejected: false, quality: 80 });
    expect(judge(10, undefined, rule('REJECT'), 50)).toEqual({ outside: false, rejected: false, quality: 100 });
    expect(judge(90, undefined, rule('REJECT'), 50).outside).toBe(false); // the bounds are inside
  });

  it('rejects with REJECT, lowers the quality with DEGRADE (never raises it), and only flags with ALERT', () => {
    expect(judge(95, undefined, rule('REJECT'), 50)).toEqual({ outside: true, rejected: true, quality: 100 });
    expect(judge(9.9, undefined, rule('DEGRADE'), 50)).toEqual({ outside: true, rejected: false, quality: 50 });
    expect(judge(95, 30, rule('DEGRADE'), 50)).toEqual({ outside: true, rejected: false, quality: 30 });
    expect(judge(95, 70, rule('ALERT'), 50)).toEqual({ outside: true, rejected: false, quality: 70 });
  });
});

describe('outOfRangeAlert', () => {
  it('names the machine, sensor, value and range, INFO for DEGRADE and WARNING otherwise', () => {
    const a = outOfRangeAlert(series, reading(95), rule('ALERT'));
    expect(a).toEqual({
      machineId: 'M-1',
      sensorId: 'M-1-TEMP',
      type: 'OUT_OF_RANGE',
      severity: 'WARNING',
      ts: new Date('2030-01-01T00:00:00Z'),
      metric: 'temperature',
      value: 95,
      expectedMin: 10,
      expectedMax: 90,
      message: 'temperature 95 degC outside 10..90 (ALERT)',
    });
    expect(outOfRangeAlert(series, reading(95), rule('DEGRADE')).severity).toBe('INFO');
  });
});

describe('isRepeat', () => {
  const prev = { ts: 1_000, value: 5 };
  it('is a repeat: the same value at another time within the window', () => {
    expect(isRepeat(prev, 1_500, 5, 1_000)).toBe(true);
    expect(isRepeat(prev, 500, 5, 1_000)).toBe(true); // a late one counts too
  });
  it('is not: another value, the window passed, the same timestamp (a redelivery), no window, no previous', () => {
    expect(isRepeat(prev, 1_500, 6, 1_000)).toBe(false);
    expect(isRepeat(prev, 2_000, 5, 1_000)).toBe(false);
    expect(isRepeat(prev, 1_000, 5, 1_000)).toBe(false);
    expect(isRepeat(prev, 1_500, 5, 0)).toBe(false);
    expect(isRepeat(undefined, 1_500, 5, 1_000)).toBe(false);
  });
});
