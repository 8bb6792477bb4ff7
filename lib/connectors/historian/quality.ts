/**
 * Historian quality on the hub's 0–100 scale, in one table per historian so a reader sees every case at once
 * (protocols.md §1 and §2). 100 good, 50 uncertain, 0 bad; the pipeline's range rules and the quality report work
 * on this number, whatever the source.
 */

/** PI Web API value flags (stream/actions/getrecorded): the worst flag that is set decides. */
export const PI_QUALITY = {
  /** `Good: false`: a system state (I/O Timeout, Shutdown, Pt Created...), an error object, or a bad value. */
  notGood: 0,
  /** `Questionable: true`: the interface doubted it (a value out of range, stale...). */
  questionable: 50,
  /** `Substituted: true`: someone replaced the value by hand. Believed, but not measured. */
  substituted: 70,
  /** `Good: true`, nothing else set. `Annotated` is a note attached to the value and changes nothing. */
  good: 100,
} as const;

export function piQuality(flags: { Good?: boolean; Questionable?: boolean; Substituted?: boolean }): number {
  if (flags.Good === false) return PI_QUALITY.notGood;
  if (flags.Questionable) return PI_QUALITY.questionable;
  if (flags.Substituted) return PI_QUALITY.substituted;
  return PI_QUALITY.good;
}

/**
 * AVEVA Historian: `OpcQuality` by range (good is all of 192–219: 216 is a local override, and filtering on 192 alone
 * silently drops good rows), and `Quality` where the row has it (0 good, 1 bad, 16 doubtful, 133 the initial value
 * of a delta query, good). The worse of the two decides.
 */
export const AVEVA_OPC_QUALITY = [
  { from: 192, to: 219, quality: 100, meaning: 'good' },
  { from: 64, to: 91, quality: 50, meaning: 'uncertain' },
  { from: 0, to: 35, quality: 0, meaning: 'bad' },
] as const;

export const AVEVA_QUALITY: Readonly<Record<number, number>> = { 0: 100, 1: 0, 16: 50, 133: 100 };

export function avevaQuality(row: { OpcQuality?: number | null; Quality?: number | null }): number {
  let q = 100;
  if (typeof row.OpcQuality === 'number') {
    // A code in none of the documented ranges (36–63, 92–191, 220+) is not known to be good.
    q = AVEVA_OPC_QUALITY.find((r) => row.OpcQuality! >= r.from && row.OpcQuality! <= r.to)?.quality ?? 0;
  }
  if (typeof row.Quality === 'number') q = Math.min(q, AVEVA_QUALITY[row.Quality] ?? 0);
  return q;
}
