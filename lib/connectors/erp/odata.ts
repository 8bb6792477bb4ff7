import { badResponse } from '../errors.ts';
import { RecordProblem } from '../values.ts';

/**
 * SAP Gateway OData V2 wire details (reference/protocols.md §3): the verbose-JSON envelope (`d.results`,
 * `d.__next`, `d.__count`), Edm.DateTime `/Date(ms)/`, Edm.Time `PT07H00M00S`, decimals as strings, flags "X"/"".
 */
export interface ODataPage<T> {
  results: T[];
  next?: string;
}

export function readCollection<T>(system: string, body: unknown): ODataPage<T> {
  const d = (body as { d?: { results?: unknown; __next?: unknown } } | null)?.d;
  if (!d || !Array.isArray(d.results)) throw badResponse(system, 'OData answer has no d.results array');
  return {
    results: d.results as T[],
    next: typeof d.__next === 'string' && d.__next ? d.__next : undefined,
  };
}

const EDM_TIME = /^PT(\d{1,2})H(\d{1,2})M(\d{1,2}(?:\.\d+)?)S$/;

/** Edm.Time → milliseconds after midnight. */
export function edmTimeMs(v: unknown, field: string): number {
  if (v === undefined || v === null || v === '') return 0;
  const m = typeof v === 'string' ? EDM_TIME.exec(v) : null;
  if (!m) throw new RecordProblem(`${field} ${JSON.stringify(v)} is not an Edm.Time`);
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000;
}

export const flag = (v: unknown): boolean => v === true || v === 'X';

/** An OData V2 datetime literal for $filter (UTC, no offset: Edm.DateTime carries none). */
export function datetimeLiteral(d: Date): string {
  return `datetime'${d.toISOString().slice(0, 19)}'`;
}

/** A string literal for $filter ('' doubles a quote). */
export const str = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The `error` of SAP's JSON error body (OData V2). */
interface SapErrorJson {
  message?: string | { value?: unknown };
  code?: string;
  innererror?: { transactionid?: string };
}

/** SAP's error body (JSON with Accept: application/json, else the same tree as XML) → code, message, transaction id. */
export function describeSapError(
  body: string,
): { message: string; upstreamCode?: string; transactionId?: string } | undefined {
  try {
    const e = (JSON.parse(body) as { error?: SapErrorJson }).error;
    if (e) {
      const message = typeof e.message === 'string' ? e.message : e.message?.value;
      return { message: String(message ?? 'error'), upstreamCode: e.code, transactionId: e.innererror?.transactionid };
    }
  } catch {
    const code = /<code>([^<]*)<\/code>/.exec(body)?.[1];
    const message = /<message[^>]*>([^<]*)<\/message>/.exec(body)?.[1];
    const transactionId = /<transactionid>([^<]*)<\/transactionid>/.exec(body)?.[1];
    if (code || message) return { message: message ?? 'error', upstreamCode: code, transactionId };
  }
  return undefined;
}

/** A decimal sent as an OData Edm.Decimal string. */
export const edmDecimal = (n: number, places = 3) => n.toFixed(places);
