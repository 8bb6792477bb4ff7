import { HubError } from '../errors.ts';

/**
 * What an external call can end in, as one typed error: UPSTREAM_UNAVAILABLE (no answer in time, refused,
 * 5xx, 429 — worth retrying) or UPSTREAM_BAD_RESPONSE (an answer we cannot use: 4xx, malformed body, paging
 * that repeats). `details` name the system and, where there is one, the upstream's own error code; never a secret.
 */
export class UpstreamError extends HubError {
  constructor(
    code: 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_BAD_RESPONSE',
    readonly system: string,
    message: string,
    readonly upstream: { status?: number; upstreamCode?: string; transactionId?: string; retryable?: boolean } = {},
    cause?: unknown,
  ) {
    super(code, `${system}: ${message}`, { system, ...stripUndefined(upstream) }, cause);
  }

  get retryable(): boolean {
    return this.upstream.retryable ?? this.code === 'UPSTREAM_UNAVAILABLE';
  }
}

export const unavailable = (system: string, message: string, upstream: UpstreamError['upstream'] = {}, cause?: unknown) =>
  new UpstreamError('UPSTREAM_UNAVAILABLE', system, message, { retryable: true, ...upstream }, cause);
export const badResponse = (system: string, message: string, upstream: UpstreamError['upstream'] = {}, cause?: unknown) =>
  new UpstreamError('UPSTREAM_BAD_RESPONSE', system, message, { retryable: false, ...upstream }, cause);

function stripUndefined(o: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'retryable'));
}

/**
 * An operation the configured system has no equivalent for (a B2MML SOAP MES has no recipe call; Oracle's
 * workOrders API has no material master). BAD_USER_INPUT like "no MES is configured": the request cannot be met
 * with this configuration, and retrying will not help. `details.reason` is NOT_SUPPORTED.
 */
export const notSupported = (system: string, operation: string, why: string) =>
  new HubError('BAD_USER_INPUT', `${system}: ${operation} is not supported by this system (${why})`, { system, operation, reason: 'NOT_SUPPORTED' });
