import { badResponse, unavailable, type UpstreamError } from '../errors.ts';
import { piQuality } from './quality.ts';
import type { HistorianPoint, RefusedPoint } from './types.ts';

/**
 * PI Web API wire values in the hub's terms (reference/protocols.md §1, topics/value-types): numbers and booleans
 * become numbers, enumeration objects `{Name, Value, IsSystem}` become states, and whatever the hub cannot store
 * (strings, arrays, `{Errors:[...]}`) is refused with a reason rather than dropped.
 */

/** One item of `streams/{webId}/recorded`, as far as we select it. */
export interface PiItem {
  Timestamp?: unknown;
  Value?: unknown;
  Good?: boolean;
  Questionable?: boolean;
  Substituted?: boolean;
}

/** One item as a point or a refusal; `ts` is the item's parsed timestamp. */
export function piValue(item: PiItem, ts: Date): { point: HistorianPoint } | { refused: RefusedPoint } {
  const v = item.Value;
  // No closure here: this runs for every value of a backfill (tsx's keepNames makes each closure a defineProperty).
  const quality = piQuality(item);
  if (typeof v === 'number')
    return Number.isFinite(v) ? { point: { ts, value: v, quality } } : refusal(ts, v, 'not finite');
  if (typeof v === 'boolean') return { point: { ts, value: v ? 1 : 0, quality } };
  if (typeof v === 'string') return refusal(ts, v, 'a text value (String point, or a bad value as text): not a number');
  if (Array.isArray(v)) return refusal(ts, v, 'an array value: not a number');
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.Errors)) return refusal(ts, v, `the historian's error: ${o.Errors.map(String).join('; ')}`);
    // A system state (I/O Timeout, Shutdown...) comes with Good: false, so piQuality already gives it 0.
    if (typeof o.Name === 'string' && typeof o.Value === 'number')
      return { point: { ts, value: { state: o.Name, code: o.Value }, quality } };
  }
  return refusal(ts, v, v === null || v === undefined ? 'no value' : 'an object that is not a state');
}

const refusal = (ts: Date, raw: unknown, reason: string) => ({ refused: { ts, reason, raw } });

/**
 * PI 2017 R2+ may answer 200 and still have failed (`WebException` in the body); its StatusCode says whether it is
 * worth trying again.
 */
export function webException(system: string, path: string, body: unknown): UpstreamError | undefined {
  const we = (body as { WebException?: { Errors?: unknown; StatusCode?: unknown } } | null)?.WebException;
  if (!we) return undefined;
  const status = typeof we.StatusCode === 'number' ? we.StatusCode : undefined;
  const errs = Array.isArray(we.Errors) ? we.Errors.map(String).join('; ') : 'no details';
  const msg = `${path} answered 200 with a WebException (${status ?? '?'}): ${errs}`;
  return status !== undefined && (status >= 500 || status === 429 || status === 408)
    ? unavailable(system, msg, { status })
    : badResponse(system, msg, { status });
}

/** PI's error body `{"Errors":[...]}` as one message. */
export function describePiError(body: string): { message: string } | undefined {
  try {
    const e = (JSON.parse(body) as { Errors?: unknown }).Errors;
    return Array.isArray(e) && e.length ? { message: e.map(String).join('; ') } : undefined;
  } catch {
    return undefined;
  }
}
