/**
 * Wall-clock times of an IANA time zone as instants, DST included: what a file's zone-less "2026-10-25 02:30" at a
 * Berlin site means. Around a change a wall time may name no instant (the skipped hour of spring) or two (the
 * repeated hour of autumn); callers decide what that means for them (an import names the row, or takes the
 * instants in file order, see ZonedReader). Built on Intl's offsets only: no tz database of our own to go stale.
 */

/** A wall-clock time: calendar fields as written, no zone. Months 1–12. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Formats instants in `zone` to numeric fields; one formatter per zone (they are costly to make). */
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Whether `zone` is an IANA zone this runtime knows (an unknown one throws a RangeError in Intl). */
export function isTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock time in `zone` at `instant` (milliseconds kept). */
export function wallOf(zone: string, instant: number): WallTime {
  const parts = formatter(zone).formatToParts(new Date(instant));
  const get = (t: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === t)?.value);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
    ms: ((instant % 1000) + 1000) % 1000,
  };
}

/** The zone's offset from UTC at `instant`, in ms (Berlin in summer: +7,200,000). Whole seconds. */
export function offsetAt(zone: string, instant: number): number {
  const parts = formatter(zone).formatToParts(new Date(instant));
  const get = (t: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  const wholeSecond = instant - (((instant % 1000) + 1000) % 1000);
  return asUtc - wholeSecond;
}

/**
 * The instants a wall time names in `zone`, earliest first: one on an ordinary day, none in a skipped hour, two in
 * a repeated hour. Offsets are looked up a day either side, which covers every change (none is longer than a day).
 */
export function instantsOf(zone: string, w: WallTime): number[] {
  const local = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.ms);
  const offsets = new Set([
    offsetAt(zone, local - 86_400_000),
    offsetAt(zone, local),
    offsetAt(zone, local + 86_400_000),
  ]);
  const out: number[] = [];
  for (const off of offsets) {
    const t = local - off;
    if (offsetAt(zone, t) === off && !out.includes(t)) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/** A wall time that names no instant (spring's skipped hour), with the zone and the times around the gap. */
export class SkippedTimeError extends Error {
  override name = 'SkippedTimeError';
  constructor(
    readonly zone: string,
    readonly wall: WallTime,
  ) {
    super(`${wallText(wall)} does not exist in ${zone}: the clocks skip it (a DST change)`);
  }
}

export function wallText(w: WallTime): string {
  const p = (n: number, l = 2) => String(n).padStart(l, '0');
  return `${p(w.year, 4)}-${p(w.month)}-${p(w.day)} ${p(w.hour)}:${p(w.minute)}:${p(w.second)}`;
}

/**
 * Reads a file's wall times in order, as a plant's logger wrote them: in a repeated hour the first pass is the
 * earlier instant and the second pass, once the clock has gone back, the later one, so "02:30, 02:45, 02:15,
 * 02:30" in the autumn night are four distinct instants in order. A skipped time throws SkippedTimeError.
 */
export class ZonedReader {
  private last = Number.NEGATIVE_INFINITY;

  constructor(readonly zone: string) {}

  read(w: WallTime): number {
    const found = instantsOf(this.zone, w);
    if (!found.length) throw new SkippedTimeError(this.zone, w);
    // The earlier instant unless the file has already passed it: then the clocks went back meanwhile.
    const t = found.length === 2 && found[0]! <= this.last ? found[1]! : found[0]!;
    if (t > this.last) this.last = t;
    return t;
  }
}
