import autocannon from 'autocannon';

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

export interface HttpTarget {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * autocannon against one POST endpoint with `connections` keep-alive connections (one request in flight each).
 * Latencies come from its per-response event (float ms) rather than its integer-ms histogram; a 200 whose
 * body holds a GraphQL `errors` array counts as an error, as do non-2xx answers.
 */
export function autocannonRun(t: HttpTarget, connections: number, seconds: number): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    let lastStatus = 0;
    const started = process.hrtime.bigint();
    const inst = autocannon(
      {
        url: t.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...t.headers },
        body: t.body,
        connections,
        duration: seconds,
        timeout: 10,
        verifyBody: (body) => !body.includes('"errors":'),
      },
      (err, result) => {
        if (err) return reject(err);
        const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
        errors += result.non2xx + result.errors;
        if (result.non2xx && !firstError) firstError = `${result.non2xx} non-2xx answers`;
        resolve({ latencies, errors, firstError, seconds: elapsed });
      },
    );
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      lastStatus = status;
      if (status >= 200 && status < 300) latencies.push(ms);
    });
    // autocannon emits a mismatch right after that response's event. A 2xx carrying `errors` was recorded as a
    // latency above: take it back out and count it; a non-2xx is already in result.non2xx.
    inst.on('reqMismatch', (body: string) => {
      firstError ??= body.slice(0, 500);
      if (lastStatus < 200 || lastStatus >= 300) return;
      errors++;
      latencies.pop();
    });
    inst.on('reqError', (e: Error) => {
      firstError ??= e.message;
    });
  });
}

/**
 * The same closed loop for a sequence autocannon cannot express: `connections` workers, each running
 * `once()` back to back until the time is up. One call = one request; a throw = one error.
 */
export async function closedLoop(connections: number, seconds: number, once: () => Promise<void>): Promise<Sample> {
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
