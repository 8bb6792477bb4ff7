/** One measured run: every latency (ms, float) and what went wrong. */
export interface Sample {
  latencies: number[];
  /** non-2xx answers, 2xx answers carrying GraphQL errors, connection errors and timeouts. */
  errors: number;
  /** The first failure seen, to show when a warm-up must abort. */
  firstError?: string;
  seconds: number;
}

export interface Stats {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

/** Nearest-rank percentile over the raw latencies (not a histogram: overheads here are fractions of a ms). */
export function percentile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;
}

export function stats(s: Sample): Stats {
  const arr = Array.from(Float64Array.from(s.latencies).sort());
  return {
    requests: arr.length,
    errors: s.errors,
    rps: arr.length / s.seconds,
    p50: percentile(arr, 50),
    p90: percentile(arr, 90),
    p99: percentile(arr, 99),
    mean: arr.reduce((a, b) => a + b, 0) / (arr.length || 1),
    max: arr[arr.length - 1] ?? NaN,
  };
}

export const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

/**
 * The load generator of every gateway-bench target: `connections` workers, each running `once()` back to back
 * until the time is up. One call = one request (for the direct baseline: its whole sequence of subgraph fetches);
 * a throw = one error. One generator for all targets, so the client's own cost and its queueing are the same.
 */
export async function closedLoop(connections: number, seconds: number, once: () => Promise<unknown>): Promise<Sample> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  const worker = async () => {
    while (process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint();
      try {
        await once();
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  return { latencies, errors, firstError, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
