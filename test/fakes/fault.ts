/**
 * Fault modes shared by the MES/ERP fakes. A fake checks `shouldFail()` per call; modes that change a body
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
 */
export type FaultMode =
  | 'ok'
  | 'timeout'
  | '500'
  | 'malformed'
  | 'repeatPage'
  | 'emptyPage'
  | 'flaky30'
  | 'applyThenFail';

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
