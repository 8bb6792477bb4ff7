/**
 * Capacity: the live measure (liveHub in live.ts, liveBaseline in baseline.ts) given a Capacity instead of a
 * rate. Its committed rate is the consumer's capacity; LIVE_SHARE of the hub's is the live measure's default rate.
 */

/**
 * `capacity`: instead of a fixed rate, the publishers keep `ahead` messages beyond what the consumer has
 * committed (so the consumer sets the pace, and its backlog stays bounded); no latency samples.
 */
export interface Capacity {
  ahead: number;
}
export const CAPACITY_RATE_CAP = 500_000;
/** The live rate, when not given, as a share of the hub's capacity (at 80% it fell behind). */
export const LIVE_SHARE = 0.7;
/** Messages the publishers keep beyond the consumer in the capacity measure. */
export const CAPACITY_AHEAD = 50_000;
