const ISO = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$/;
/** The common case, UTC with whole or 3-digit milliseconds: Date.parse takes it as it is (no string built). */
const PLAIN_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z$/;

/**
 * A historian's ISO 8601 timestamp to ms since the epoch. PI and AVEVA (datetime2(7)) write up to 7 fractional
 * digits; a Date holds ms, so the rest is cut (truncated, not rounded: rounding up could move a value past the end of
 * a [from, to) range). A time without a zone is read as UTC where the historian allows one (`zoneless: 'utc'`), else
 * refused. Undefined when malformed.
 */
export function wireTimeMs(s: unknown, zoneless: 'utc' | 'refuse' = 'refuse'): number | undefined {
  if (typeof s === 'string' && PLAIN_UTC.test(s)) {
    const ms = Date.parse(s);
    return Number.isNaN(ms) ? undefined : ms;
  }
  const m = typeof s === 'string' ? ISO.exec(s) : null;
  if (!m || (!m[3] && zoneless === 'refuse')) return undefined;
  const ms = Date.parse(`${m[1]}.${(m[2] ?? '').padEnd(3, '0').slice(0, 3)}${m[3] ?? 'Z'}`);
  return Number.isNaN(ms) ? undefined : ms;
}
