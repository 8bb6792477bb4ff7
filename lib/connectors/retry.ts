import type { RetryConfig } from '../config/connection.ts';

/**
 * The one retry loop for every call that leaves the process: exponential backoff with full jitter
 * (base·2ⁿ, capped, a random share of it) so many callers that failed together do not retry together.
 * `retryAfterMs` (e.g. from a 429's Retry-After) replaces the computed delay, still capped.
 */
export async function withRetry<T>(
  policy: RetryConfig,
  attempt: (n: number) => Promise<T>,
  shouldRetry: (err: unknown) => { retry: boolean; retryAfterMs?: number },
  onRetry?: (err: unknown, n: number, delayMs: number) => void,
  random: () => number = Math.random,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const decision = shouldRetry(err);
      if (!decision.retry || n >= policy.maxAttempts) throw err;
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
      const delay = Math.min(policy.maxDelayMs, decision.retryAfterMs ?? Math.round(backoff * (0.5 + random() / 2)));
      onRetry?.(err, n, delay);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
  }
}
