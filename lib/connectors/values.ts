import { HUB_ID } from '../ids.ts';
/**
 * Value parsing shared by every connector: upstream values arrive as strings, numbers, ISO dates, OData
 * /Date(ms)/ literals. Each parser returns the value or throws a RecordProblem naming what was wrong, which the
 * connector turns into a per-record error (the record is skipped, the sync goes on and reports PARTIAL).
 */
export class RecordProblem extends Error {}

const ODATA_DATE = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;

/**
 * ISO-8601 text, epoch milliseconds, or an OData V2 /Date(ms)/ or /Date(ms+0000)/ literal (the offset is informational:
 * ms are UTC).
 */
export function instant(v: unknown, field: string): Date {
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v);
  if (typeof v === 'string' && v.trim()) {
    const m = ODATA_DATE.exec(v.trim());
    const d = m ? new Date(Number(m[1])) : new Date(v);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new RecordProblem(`${field} ${JSON.stringify(v)} is not a date`);
}

export function optionalInstant(v: unknown, field: string): Date | null {
  return v === null || v === undefined || v === '' ? null : instant(v, field);
}

/** A decimal that may come as a string ("480", "480.000"): finite and not negative. */
export function decimal(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : NaN;
  if (!Number.isFinite(n) || n < 0)
    throw new RecordProblem(`${field} ${JSON.stringify(v)} is not a non-negative number`);
  return n;
}

/** Work order quantities are whole units. */
export function wholeQuantity(v: unknown, field: string): number {
  const n = decimal(v, field);
  if (Math.abs(n - Math.round(n)) > 1e-9)
    throw new RecordProblem(`${field} ${JSON.stringify(v)} is not a whole number`);
  if (n > 2_147_483_647) throw new RecordProblem(`${field} ${n} is too large`);
  return Math.round(n);
}

export function optionalWholeQuantity(v: unknown, field: string): number | null {
  return v === null || v === undefined || v === '' ? null : wholeQuantity(v, field);
}

export function text(v: unknown, field: string): string {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.trim()) return v.trim();
  throw new RecordProblem(`${field} is missing`);
}

export function optionalText(v: unknown): string | null {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return typeof v === 'string' && v.trim() ? v.trim() : null;
}

export function hubId(v: unknown, field: string): string {
  const s = text(v, field);
  if (!HUB_ID.test(s)) throw new RecordProblem(`${field} ${JSON.stringify(s)} is not a valid id`);
  return s;
}
