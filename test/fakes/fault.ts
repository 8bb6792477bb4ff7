/**
 * Fault modes shared by the MES/ERP fakes. A fake checks its mode per call; modes that change a body
 * (malformed, repeatPage, emptyPage) are interpreted by each fake in its own wire format.
 *
 *   ok            normal answers
 *   timeout       accept the request, never answer (the client's deadline must cut it)
 *   500           an error status with the system's error body
 *   malformed     200 with a truncated body
 *   repeatPage    every page of a list is the first page again (with a "next" that never ends)
 *   emptyPage     the second page is empty but promises more
 *   flaky30       30 % of calls answer 503 (seeded: the same run fails the same calls)
 *   applyThenFail (writes) apply the change, then answer 500 as if the answer was lost
 *   status        answer `FaultOptions.status` (401, 403, 408, 429, 503, ...) with the system's error body, and a
 *                 `Retry-After` header when `FaultOptions.retryAfter` is set (RFC 9110 §10.2.3: delay-seconds or
 *                 an HTTP-date)
 *   stallBody     the status line and headers (Content-Length of the whole body), then part of the body, then
 *                 nothing more on an open socket: the client's deadline must cut the body
 *
 * `FaultOptions.times` ends a fault after that many faulty answers (default: it lasts until the mode changes).
 */
export type FaultMode =
  | 'ok'
  | 'timeout'
  | '500'
  | 'malformed'
  | 'repeatPage'
  | 'emptyPage'
  | 'flaky30'
  | 'applyThenFail'
  | 'status'
  | 'stallBody';

export interface FaultOptions {
  /** Reseeds the flaky mode's PRNG. */
  seed?: number;
  /** `status`: the HTTP status answered. */
  status?: number;
  /** `status`: the Retry-After header sent with it. */
  retryAfter?: string | (() => string);
  /** Faulty answers before the fake answers normally again. */
  times?: number;
}

/** One request a fake received: when (performance.now() ms) and what it answered (a status, or the fault). */
export interface FakeCall {
  at: number;
  method: string;
  path: string;
  /** The Idempotency-Key header, where the request had one. */
  key?: string;
  answered?: number | 'stalled' | 'no answer';
  /** When the answer (or the stalled part of it) was written. */
  answeredAt?: number;
}

/** Old callers pass a seed where options now go. */
export const faultOptions = (o?: number | FaultOptions): FaultOptions =>
  typeof o === 'number' ? { seed: o } : (o ?? {});

/** How many faulty answers are left: `take()` is true (and counts one) while the fault still applies. */
export class FaultBudget {
  private left: number;
  constructor(times?: number) {
    this.left = times ?? Number.POSITIVE_INFINITY;
  }
  take(): boolean {
    if (this.left <= 0) return false;
    this.left--;
    return true;
  }
}

/** A small seeded PRNG (mulberry32) so flaky runs are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The Retry-After header a fault answers with; a function is called at answer time (an HTTP-date made then). */
export const retryAfterHeader = (f: { retryAfter?: string | (() => string) }): Record<string, string> =>
  f.retryAfter ? { 'retry-after': typeof f.retryAfter === 'function' ? f.retryAfter() : f.retryAfter } : {};
