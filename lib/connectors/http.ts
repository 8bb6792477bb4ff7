import axios, { isAxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { log } from '../log.ts';
import type { AuthConfig, ConnectionConfig } from '../config/connection.ts';
import { badResponse, isRefusalStatus, unavailable, UpstreamError } from './errors.ts';
import { getter } from '../dot-path.ts';
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
  /** Ends the call early (a source stopping); the connection's deadline applies as well. */
  signal?: AbortSignal;
}

/** Client-wide options beyond the connection's (what a sensor endpoint needs that an ERP does not). */
export interface UpstreamClientOptions {
  /** A larger body is refused (UPSTREAM_BAD_RESPONSE). Default: no limit. */
  maxBodyBytes?: number;
  /** Redirects followed (default 0: a MES or ERP that redirects is usually sending us to a login page). */
  maxRedirects?: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body's bytes, as they came. */
  body: Buffer;
  /** The body as UTF-8 text; `json()` parses it and turns a malformed body into UPSTREAM_BAD_RESPONSE. */
  readonly text: string;
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

  private readonly agents: { http: HttpAgent; https: HttpsAgent };

  private readonly origin: string;

  constructor(
    readonly system: string,
    readonly conn: ConnectionConfig,
    opts: UpstreamClientOptions = {},
  ) {
    this.origin = new URL(conn.baseUrl).origin;
    const tls = conn.tls;
    this.agents = {
      http: new HttpAgent({ keepAlive: true, maxSockets: 8 }),
      https: new HttpsAgent({
        keepAlive: true,
        maxSockets: 8,
        // Node's `ca` replaces the trusted CAs: the plant's CA is added to the system's, not put in their place.
        ...(tls?.ca ? { ca: [...rootCertificates, tls.ca] } : {}),
        rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      }),
    };
    if (tls?.rejectUnauthorized === false) {
      log.warn({ system, baseUrl: this.origin }, 'TLS certificates are not checked (tls.rejectUnauthorized: false)');
    }
    this.http = axios.create({
      baseURL: conn.baseUrl.replace(/\/$/, ''),
      timeout: conn.timeoutSeconds * 1000,
      // Raw bytes: we decode and parse ourselves, so a malformed body is a typed error (and can be kept as it came).
      responseType: 'arraybuffer',
      transformResponse: [(d) => d],
      validateStatus: () => true,
      maxRedirects: opts.maxRedirects ?? 0,
      ...(opts.maxBodyBytes ? { maxContentLength: opts.maxBodyBytes } : {}),
      httpAgent: this.agents.http,
      httpsAgent: this.agents.https,
    });
  }

  /** Closes the kept-alive sockets (a stopping source); calls after this open new ones. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  async request(given: UpstreamRequest): Promise<UpstreamResponse> {
    const req = { ...given, url: this.ownOrigin(given.url) };
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

  /**
   * An absolute URL comes from the upstream (a next-page link). The connection's credentials go to its own origin
   * only: a link to another host, port or scheme (a proxy's or a load balancer's own name, often) is followed on
   * the configured one, path and query kept.
   */
  private ownOrigin(url: string): string {
    if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
    const u = new URL(url);
    if (u.origin === this.origin) return url;
    log.warn({ system: this.system, linked: u.origin, configured: this.origin }, 'upstream link to another origin');
    return `${this.origin}${u.pathname}${u.search}`;
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
    let res: AxiosResponse<Buffer>;
    // The axios timeout covers the wait for headers; the abort deadline also cuts a body that trickles.
    const deadline = AbortSignal.timeout(this.conn.timeoutSeconds * 1000);
    try {
      res = await this.http.request<Buffer>({
        method,
        url: req.url,
        params,
        data,
        headers,
        signal: req.signal ? AbortSignal.any([deadline, req.signal]) : deadline,
      });
    } catch (e) {
      throw this.transportError(e, method, req.url, deadline.aborted);
    }
    const status = res.status;
    if (status === 401 && this.conn.auth.type === 'oauth2' && !refreshed) {
      // The cached token was revoked or expired early: fetch a new one and try once more.
      this.token = undefined;
      return this.attempt(req, method, true);
    }
    const body = Buffer.isBuffer(res.data) ? res.data : Buffer.from(res.data ?? '');
    let text: string | undefined;
    const out: UpstreamResponse = {
      status,
      headers: res.headers as UpstreamResponse['headers'],
      body,
      get text() {
        text ??= utf8(body);
        return text;
      },
      json: () => parseJson(this.system, out.text, req.url),
    };
    if ((status >= 200 && status < 300) || req.pass?.(status)) return out;
    const described = req.describeError?.(out.text, status);
    const message = `${method} ${pathOf(req.url)} answered ${status}${described ? `: ${described.message}` : ''}`;
    const upstream = { status, upstreamCode: described?.upstreamCode, transactionId: described?.transactionId };
    const transport = { status, statusText: res.statusText || undefined };
    // 429, 408 and 5xx say "not now": the upstream may recover by itself.
    if ((status === 429 || status === 408 || status >= 500) && described?.retryable !== false) {
      const e = unavailable(this.system, message, upstream) as UpstreamError & RetryAfter;
      e.retryAfterMs = retryAfterMs(res.headers['retry-after']);
      e.transport = transport;
      throw e;
    }
    // A SOAP Client fault (HTTP 500, describeError says final) and a refusal status reject the request itself.
    const e = badResponse(this.system, message, {
      ...upstream,
      rejected: isRefusalStatus(status) || described?.retryable === false,
    });
    e.transport = transport;
    throw e;
  }

  /** No usable answer: refused, reset, timed out, too large, too many redirects, or stopped by the caller. */
  private transportError(e: unknown, method: Method, url: string, timedOut: boolean): UpstreamError {
    const err = e as { code?: string; message?: string };
    const aborted = err.code === 'ERR_CANCELED';
    const why = timedOut ? `no complete answer within ${this.conn.timeoutSeconds} s` : (err.message ?? '');
    const message = `${method} ${pathOf(url)} failed: ${err.code ?? ''} ${why}`.trim();
    // Too large or too many redirects: the upstream answered, but not with anything usable. (axios also says
    // ERR_BAD_RESPONSE for a body cut off mid-stream: that is a dropped connection, worth retrying.)
    const tooLarge = err.code === 'ERR_BAD_RESPONSE' && /maxContentLength/.test(err.message ?? '');
    const unusable = isAxiosError(e) && (tooLarge || err.code === 'ERR_FR_TOO_MANY_REDIRECTS');
    const out = unusable ? badResponse(this.system, message, {}, e) : unavailable(this.system, message, {}, e);
    out.transport = {
      timedOut: timedOut || err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT',
      aborted: aborted && !timedOut,
      code: err.code,
      detail: err.message,
    };
    return out;
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
    let res: AxiosResponse<Buffer>;
    try {
      // The instance's options (timeout, raw bytes, any status, no redirects) and keep-alive agents; tokenUrl is
      // absolute.
      res = await this.http.post<Buffer>(a.tokenUrl, body, {
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          authorization: `Basic ${Buffer.from(
            `${encodeURIComponent(a.clientId)}:${encodeURIComponent(a.clientSecret)}`,
          ).toString('base64')}`,
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
    const text = utf8(Buffer.from(res.data ?? ''));
    const t = parseJson<{ access_token?: string; expires_in?: number | string }>(this.system, text, a.tokenUrl);
    if (!t.access_token) throw badResponse(this.system, 'token response has no access_token');
    const ttl = Number(t.expires_in ?? 300);
    this.token = {
      value: t.access_token,
      expiresAt: Date.now() + Math.max(0, (Number.isFinite(ttl) ? ttl : 300) - 30) * 1000,
    };
    return t.access_token;
  }
}

// Strips a leading byte order mark, as IIS and .NET services send one (and axios's text mode used to drop it).
const decoder = new TextDecoder('utf-8');
const utf8 = (b: Buffer): string => decoder.decode(b);

interface RetryAfter {
  retryAfterMs?: number;
}

function parseJson<T>(system: string, text: string, url: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw badResponse(
      system,
      `${pathOf(url)} answered a body that is not JSON (${text.length} bytes, ` +
        `starting ${JSON.stringify(text.slice(0, 40))})`,
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

/**
 * Reads a value at a dotted path ("a.b.c") of a parsed JSON document; an empty path (a mapping left blank) names
 * nothing.
 */
export const at = (obj: unknown, path: string): unknown => (path ? getter(path)(obj) : undefined);
