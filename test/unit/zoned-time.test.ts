import { describe, expect, it } from 'vitest';
import {
  instantsOf,
  isTimeZone,
  offsetAt,
  SkippedTimeError,
  type WallTime,
  wallOf,
  ZonedReader,
} from '../../lib/time/zoned.ts';

// Expectations are written from the zones' published rules (EU: last Sunday of March and October at 01:00 UTC;
// Nepal +05:45 all year; Adelaide +09:30 / +10:30 from the first Sunday of October; St John's -03:30 / -02:30),
// never from what the code answers.
const wall = (s: string): WallTime => {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d)(?::(\d\d))?$/.exec(s)!;
  return {
    year: +m[1]!,
    month: +m[2]!,
    day: +m[3]!,
    hour: +m[4]!,
    minute: +m[5]!,
    second: +(m[6] ?? 0),
    ms: 0,
  };
};
const iso = (ts: number[]) => ts.map((t) => new Date(t).toISOString());
const H = 3_600_000;

describe('wall-clock times in a zone', () => {
  it('reads an ordinary time with the offset of its season', () => {
    expect(iso(instantsOf('Europe/Berlin', wall('2026-01-15 08:00')))).toEqual(['2026-01-15T07:00:00.000Z']);
    expect(iso(instantsOf('Europe/Berlin', wall('2026-07-15 08:00')))).toEqual(['2026-07-15T06:00:00.000Z']);
    expect(offsetAt('Europe/Berlin', Date.UTC(2026, 6, 15))).toBe(2 * H);
  });

  it('finds no instant in the skipped spring hour, and two, earliest first, in the repeated autumn hour', () => {
    expect(instantsOf('Europe/Berlin', wall('2026-03-29 02:30'))).toEqual([]);
    expect(iso(instantsOf('Europe/Berlin', wall('2026-03-29 03:00')))).toEqual(['2026-03-29T01:00:00.000Z']);
    expect(iso(instantsOf('Europe/Berlin', wall('2026-10-25 02:30')))).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
    ]);
    expect(iso(instantsOf('Europe/Berlin', wall('2026-10-25 03:00')))).toEqual(['2026-10-25T02:00:00.000Z']);
  });

  it('keeps 30- and 45-minute offsets, and DST in the southern hemisphere', () => {
    expect(iso(instantsOf('Asia/Kathmandu', wall('2026-06-01 12:00')))).toEqual(['2026-06-01T06:15:00.000Z']);
    expect(iso(instantsOf('Australia/Adelaide', wall('2026-06-01 12:00')))).toEqual(['2026-06-01T02:30:00.000Z']);
    expect(iso(instantsOf('Australia/Adelaide', wall('2026-12-01 12:00')))).toEqual(['2026-12-01T01:30:00.000Z']);
    // Adelaide springs forward on 2026-10-04 at 02:00 local: 02:30 does not exist.
    expect(instantsOf('Australia/Adelaide', wall('2026-10-04 02:30'))).toEqual([]);
    expect(iso(instantsOf('America/St_Johns', wall('2026-01-15 12:00')))).toEqual(['2026-01-15T15:30:00.000Z']);
  });

  it('reads a logger through the autumn night in order: the repeated hour twice, as distinct instants', () => {
    const r = new ZonedReader('Europe/Berlin');
    const rows = ['2026-10-25 01:45', '2026-10-25 02:15', '2026-10-25 02:45', '2026-10-25 02:15', '2026-10-25 02:45'];
    expect(iso(rows.map((s) => r.read(wall(s))))).toEqual([
      '2026-10-24T23:45:00.000Z',
      '2026-10-25T00:15:00.000Z',
      '2026-10-25T00:45:00.000Z',
      '2026-10-25T01:15:00.000Z',
      '2026-10-25T01:45:00.000Z',
    ]);
    expect(iso([r.read(wall('2026-10-25 03:00'))])).toEqual(['2026-10-25T02:00:00.000Z']);
  });

  it('refuses a skipped time by name, and knows a zone from a typo', () => {
    const r = new ZonedReader('Europe/Berlin');
    expect(() => r.read(wall('2026-03-29 02:15'))).toThrow(SkippedTimeError);
    expect(() => r.read(wall('2026-03-29 02:15'))).toThrow(/2026-03-29 02:15:00 does not exist in Europe\/Berlin/);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Europe/Berlln')).toBe(false);
  });

  it('gives the wall time of an instant, both passes of the repeated hour alike', () => {
    expect(wallOf('Europe/Berlin', Date.parse('2026-10-25T00:30:00.250Z'))).toEqual({
      ...wall('2026-10-25 02:30'),
      ms: 250,
    });
    expect(wallOf('Europe/Berlin', Date.parse('2026-10-25T01:30:00Z'))).toEqual(wall('2026-10-25 02:30'));
    expect(wallOf('Asia/Kathmandu', Date.parse('2026-06-01T18:15:00Z'))).toEqual(wall('2026-06-02 00:00'));
  });

  it('keeps milliseconds, and a UTC zone is the wall time itself', () => {
    expect(instantsOf('UTC', { ...wall('2026-03-29 02:30'), ms: 123 })).toEqual([Date.UTC(2026, 2, 29, 2, 30, 0, 123)]);
    expect(instantsOf('Europe/Berlin', { ...wall('2026-01-15 08:00'), ms: 999 })).toEqual([
      Date.UTC(2026, 0, 15, 7, 0, 0, 999),
    ]);
  });
});
