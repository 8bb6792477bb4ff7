import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { log } from '../log.ts';
import type { AuthConfig, ConnectionConfig } from './config.ts';
import { badResponse, isRefusalStatus, unavailable, UpstreamError } from './errors.ts';
import { getter } from '../telemetry/json-mapping.ts';
import { withRetry } from './retry.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface UpstreamRequest {
  method?: Method;
  /** Absolute, or a path under the connection's baseUrl. */
  url: string;
  params?: Record<string, string | number | undefined>;
  /** A string is sent as it is (XML, form); anything else as JSON. */
  data?: unknown;
  headers?: Record<string, string>;
  /** Statuses handed back to the caller instead of raised (e.g. SAP's CSRF 403). */
  pass?: (status: number) => boolean;
  /**
   * Turns a non-2xx body into the upstream's own code and message (e.g. SAP's error object). `retryable: false`
   * makes a 5xx final (a SOAP Client fault arrives as HTTP 500 but says the request itself is wrong).
   */
  describeError?: (
    body: string,
    status: number,
  ) => { message: string; upstreamCode?: string; transactionId?: string; retryable?: boolean } | undefined;
  /**
   * Whether sending the request twice is harmless. Default: true for GET, false for writes. A write that is
   * not idempotent is never retried: after a timeout we cannot know whether it was applied.
   */
  idempotent?: boolean;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body; `json()` parses it and turns a malformed body into UPSTREAM_BAD_RESPONSE. */
  text: string;
  json<T = unknown>(): T;
}

/**
 * The HTTP client every REST/OData connector uses: the connection's auth on each call (OAuth2 client-credentials
 * tokens cached and fetched again once on a 401), a deadline per attempt that also cuts a body that stalls,
 * bounded retries with backoff for transient failures (network, timeout, 5xx, 429), and typed errors.
 * Logs name the system, method and path only: never a header, a token or a query string (it may hold a key).
 */
export class UpstreamClient {
  private readonly http: AxiosInstance;
  private token?: { value: string; expiresAt: number };
  private tokenInFlight?: Promise<string>;

  constructor(
    readonly system: string,
    readonly conn: ConnectionConfig,
  ) {
    this.http = axios.create({
      baseURL: conn.baseUrl.replace(/\/$/, ''),
      timeout: conn.timeoutSeconds * 1000,
      // Raw text: we parse ourselves so a malformed body is a typed error, not an axios quirk.
      responseType: 'text',
      transformResponse: [(d) => d],
      validateStatus: () => true,
      maxRedirects: 0,
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 8 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 8 }),
    });
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const method = req.method ?? 'GET';
    return withRetry(
      this.conn.retry,
      () => this.attempt(req, method),
      (err) =>
        err instanceof UpstreamError && err.retryable && (req.idempotent ?? method === 'GET')
          ? { retry: true, retryAfterMs: (err as RetryAfter).retryAfterMs }
          : { retry: false },
      (err, n, delayMs) =>
        log.warn(
          { system: this.system, method, path: pathOf(req.url), attempt: n, delayMs, err: (err as Error).message },
          'upstream call failed; retrying',
        ),
    );
  }

  private async attempt(req: UpstreamRequest, method: Method, refreshed = false): Promise<UpstreamResponse> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.conn.headers, ...req.headers };
    const params: Record<string, string | number | undefined> = { ...req.params };
    await this.authorise(headers, params);
    let data = req.data;
    if (data !== undefined && typeof data !== 'string') {
      data = JSON.stringify(data);
      headers['content-type'] ??= 'application/json';
    }
    let res: AxiosResponse<string>;
    try {
      res = await this.http.request<string>({
        method,
        url: req.url,
        params,
        data,
        headers,
        // The axios timeout covers the wait for headers; the abort deadline also cuts a body that trickles.
        signal: AbortSignal.timeout(this.conn.timeoutSeconds * 1000),
      });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      throw unavailable(
        this.system,
        `${method} ${pathOf(req.url)} failed: ${err.code ?? ''} ${err.message ?? ''}`.trim(),
        {},
        e,
      );
    }
    const status = res.status;
    if (status === 401 && this.conn.auth.type === 'oauth2' && !refreshed) {
      // The cached token was revoked or expired early: fetch a new one and try once more.
      this.token = undefined;
      return this.attempt(req, method, true);
    }
    const text = typeof res.data === 'string' ? res.data : String(res.data ?? '');
    const out: UpstreamResponse = {
      status,
      headers: res.headers as UpstreamResponse['headers'],
      text,
      json: () => parseJson(this.system, text, req.url),
    };
    if ((status >= 200 && status < 300) || req.pass?.(status)) return out;
    const described = req.describeError?.(text, status);
    const message = `${method} ${pathOf(req.url)} answered ${status}${described ? `: ${described.message}` : ''}`;
    const upstream = { status, upstreamCode: described?.upstreamCode, transactionId: described?.transactionId };
    if ((status === 429 || status >= 500) && described?.retryable !== false) {
      const e = unavailable(this.system, message, upstream) as UpstreamError & RetryAfter;
      e.retryAfterMs = retryAfterMs(res.headers['retry-after']);
      throw e;
    }
    // A SOAP Client fault (HTTP 500, describeError says final) and a refusal status reject the request itself.
    throw badResponse(this.system, message, {
      ...upstream,
      rejected: isRefusalStatus(status) || described?.retryable === false,
    });
  }

  private async authorise(headers: Record<string, string>, params: Record<string, string | number | undefined>) {
    const a: AuthConfig = this.conn.auth;
    if (a.type === 'basic')
      headers.authorization = `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
    else if (a.type === 'apiKey') {
      if (a.queryParam) params[a.queryParam] = a.key;
      else headers[a.header.toLowerCase()] = a.key;
    } else if (a.type === 'oauth2') headers.authorization = `Bearer ${await this.accessToken(a)}`;
  }

  /** One token request at a time; the token is reused until 30 s before it expires. */
  private async accessToken(a: Extract<AuthConfig, { type: 'oauth2' }>): Promise<string> {
    if (this.token && Date.now() < this.token.expiresAt) return this.token.value;
    this.tokenInFlight ??= this.fetchToken(a).finally(() => (this.tokenInFlight = undefined));
    return this.tokenInFlight;
  }

  private async fetchToken(a: Extract<AuthConfig, { type: 'oauth2' }>): Promise<string> {
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      ...(a.scope ? { scope: a.scope } : {}),
    }).toString();
    let res: AxiosResponse<string>;
    try {
      // The instance's options (timeout, raw text, any status, no redirects) and keep-alive agents; tokenUrl is absolute.
      res = await this.http.post<string>(a.tokenUrl, body, {
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(a.clientId)}:${encodeURIComponent(a.clientSecret)}`).toString('base64')}`,
        },
        signal: AbortSignal.timeout(this.conn.timeoutSeconds * 1000),
      });
    } catch (e) {
      throw unavailable(this.system, `token request failed: ${(e as Error).message}`, {}, e);
    }
    if (res.status >= 500 || res.status === 429)
      throw unavailable(this.system, `token request answered ${res.status}`, { status: res.status });
    if (res.status !== 200)
      throw badResponse(this.system, `token request refused (${res.status}): check the client id and secret`, {
        status: res.status,
      });
    const t = parseJson<{ access_token?: string; expires_in?: number | string }>(this.system, res.data, a.tokenUrl);
    if (!t.access_token) throw badResponse(this.system, 'token response has no access_token');
    const ttl = Number(t.expires_in ?? 300);
    this.token = {
      value: t.access_token,
      expiresAt: Date.now() + Math.max(0, (Number.isFinite(ttl) ? ttl : 300) - 30) * 1000,
    };
    return t.access_token;
  }
}

interface RetryAfter {
  retryAfterMs?: number;
}

function parseJson<T>(system: string, text: string, url: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw badResponse(
      system,
      `${pathOf(url)} answered a body that is not JSON (${text.length} bytes, starting ${JSON.stringify(text.slice(0, 40))})`,
    );
  }
}

/** The path of a URL, without its query (which may carry a key). */
export function pathOf(url: string): string {
  try {
    return new URL(url, 'http://x').pathname;
  } catch {
    return url.split('?')[0] ?? '';
  }
}

function retryAfterMs(h: unknown): number | undefined {
  if (typeof h !== 'string') return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return s * 1000;
  const at = Date.parse(h);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Reads a value at a dotted path ("a.b.c") of a parsed JSON document; an empty path (a mapping left blank) names nothing. */
export const at = (obj: unknown, path: string): unknown => (path ? getter(path)(obj) : undefined);
