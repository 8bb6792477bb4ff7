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
    readonly upstream: {
      status?: number;
      upstreamCode?: string;
      transactionId?: string;
      retryable?: boolean;
      rejected?: boolean;
    } = {},
    cause?: unknown,
  ) {
    // Only a safe summary of the cause is kept: an axios error carries the request config, Authorization header
    // included.
    super(
      code,
      `${system}: ${message}`,
      { system, ...stripUndefined(upstream) },
      cause === undefined ? undefined : safeCause(cause),
    );
  }

  /**
   * What the exchange itself came to, for callers that report it in their own words (the HTTP poller's endpoint
   * status): the status line, or how the transport failed. Never part of the client-visible details.
   */
  transport?: {
    status?: number;
    statusText?: string;
    timedOut?: boolean;
    /** Ended by the caller's signal, not by the upstream. */
    aborted?: boolean;
    code?: string;
    detail?: string;
  };

  get retryable(): boolean {
    return this.upstream.retryable ?? this.code === 'UPSTREAM_UNAVAILABLE';
  }

  /**
   * The upstream refused this request itself (a 4xx other than auth/timeout/rate limits, a SOAP Client fault, a
   * B2MML Rejected acknowledgement): sending it again unchanged will not help. Everything else may pass.
   */
  get rejected(): boolean {
    return this.upstream.rejected === true;
  }
}

/** 4xx statuses that say something about the request itself, not about credentials, time or load. */
export const isRefusalStatus = (status: number) =>
  status >= 400 && status < 500 && ![401, 403, 407, 408, 425, 429].includes(status);

/** What may be kept of an underlying error: code, status, message and the URL without credentials or query. */
export class UpstreamCause extends Error {
  override name = 'UpstreamCause';
  constructor(
    message: string,
    readonly code?: string,
    readonly status?: number,
    readonly url?: string,
  ) {
    super(message);
  }
}

export function safeCause(e: unknown): UpstreamCause {
  const err = (e ?? {}) as {
    message?: unknown;
    code?: unknown;
    status?: unknown;
    response?: { status?: unknown };
    config?: { url?: unknown; baseURL?: unknown };
  };
  const status =
    typeof err.status === 'number'
      ? err.status
      : typeof err.response?.status === 'number'
        ? err.response.status
        : undefined;
  const c = new UpstreamCause(
    String(err.message ?? e),
    typeof err.code === 'string' ? err.code : undefined,
    status,
    safeUrl(err.config?.url, err.config?.baseURL),
  );
  c.stack = `${c.name}: ${c.message}`; // the original stack may print the original error's fields
  return c;
}

function safeUrl(url: unknown, base: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    const u = new URL(url, typeof base === 'string' ? base : 'http://unknown');
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.split('?')[0];
  }
}

export const unavailable = (
  system: string,
  message: string,
  upstream: UpstreamError['upstream'] = {},
  cause?: unknown,
) => new UpstreamError('UPSTREAM_UNAVAILABLE', system, message, { retryable: true, ...upstream }, cause);
export const badResponse = (
  system: string,
  message: string,
  upstream: UpstreamError['upstream'] = {},
  cause?: unknown,
) => new UpstreamError('UPSTREAM_BAD_RESPONSE', system, message, { retryable: false, ...upstream }, cause);

function stripUndefined(o: Record<string, unknown>) {
  return Object.fromEntries(
    Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'retryable' && k !== 'rejected'),
  );
}

/**
 * An operation the configured system has no equivalent for (a B2MML SOAP MES has no recipe call; Oracle's
 * workOrders API has no material master). BAD_USER_INPUT like "no MES is configured": the request cannot be met
 * with this configuration, and retrying will not help. `details.reason` is NOT_SUPPORTED.
 */
export const notSupported = (system: string, operation: string, why: string) =>
  new HubError('BAD_USER_INPUT', `${system}: ${operation} is not supported by this system (${why})`, {
    system,
    operation,
    reason: 'NOT_SUPPORTED',
  });
