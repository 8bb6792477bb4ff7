/**
 * What the backfill bench's processes share: the truth the PI fake serves (tags, their times and values) and the
 * COPY baseline writes again, so that both sides compute the same points from the same two numbers.
 */

export const say = (s = '') => console.log(s);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const f1 = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(1) : 'n/a');
export const f2 = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(2) : 'n/a');

export const HISTORIAN = 'BENCH-PI';
export const PI_SERVER = '\\\\BENCHPI\\';
/** One value a second per tag: 10,000 values are 2.8 hours, all in the past (a backfill may not reach the future). */
export const STEP_MS = 1000;

export const tagPath = (i: number) => `${PI_SERVER}BENCH${String(i).padStart(5, '0')}.PV`;

/** The k-th value of tag i: the tag's number plus a fraction, so a sum over the table checks every row. */
export const pointValue = (i: number, k: number) => i + (k % 100) / 100;

/** The sum of every value of `tags` × `values`, as the table must hold it. */
export function truthSum(tags: number, values: number): number {
  let fractions = 0;
  for (let k = 0; k < values; k++) fractions += (k % 100) / 100;
  return ((tags * (tags - 1)) / 2) * values + tags * fractions;
}

export interface Shape {
  tags: number;
  values: number;
  /** ms of every tag's first value; the last is at start + (values − 1) × STEP_MS. */
  start: number;
}

/** The range to fill: whole hours, ending at least 10 minutes before now (the hub refuses a `to` in the future). */
export function shapeFor(tags: number, values: number, now = Date.now()): Shape {
  const span = values * STEP_MS;
  const end = Math.floor((now - 600_000) / 3_600_000) * 3_600_000;
  return { tags, values, start: end - Math.ceil(span / 3_600_000) * 3_600_000 };
}
