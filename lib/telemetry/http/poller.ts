import http from 'node:http';
import https from 'node:https';
import axios, { isAxiosError, type AxiosInstance } from 'axios';
import type { ErrorCode } from '../../errors.ts';
import { log as rootLog } from '../../log.ts';
import { applyMapping } from '../json-mapping.ts';
import type { DeadLetter, IncomingReading, TelemetrySink } from '../types.ts';
import type { HttpEndpointConfig, HttpPollingConfig } from './config.ts';

export type UpstreamErrorCode = Extract<ErrorCode, 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_BAD_RESPONSE'>;

export interface EndpointStatus {
  name: string;
  url: string;
  intervalSeconds: number;
  /** When the last document that reached the store was received (set on the pipeline's ack). */
  lastSuccessAt?: Date;
  lastFailureAt?: Date;
  lastError?: string;
  /** Unset when the last failure was the pipeline's, not the endpoint's. */
  lastErrorCode?: UpstreamErrorCode;
  /** Failed polls since the endpoint last answered with JSON (pipeline failures count too). */
  consecutiveFailures: number;
  /** The HTTP exchange only; time spent waiting on the pipeline is not the endpoint's. */
  lastDurationMs?: number;
  /** Readings and dead letters committed by the pipeline. */
  readings: number;
  deadLetters: number;
  /** Polls that came due while the previous one was still running (usually: the pipeline pushing back). */
  skippedPolls: number;
  /** Set while a poll (request and submit) runs: shows a hung endpoint or a pipeline holding back. */
  pollingSince?: Date;
  nextPollAt?: Date;
}

export interface HttpPollerOptions {
  now?: () => Date;
  /** 0 ≤ x < 1, for the backoff jitter; injectable so tests can pin it. */
  random?: () => number;
  /** Readings stamped later than receipt + this are dead letters; pass iot.yml pipeline.maxFutureSeconds. Default 5 min. */
  maxFutureMs?: number;
}

/** A sensor document is a few KB; a body this large means the URL points at something else. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

class PollFailure extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface Endpoint {
  cfg: HttpEndpointConfig;
  status: EndpointStatus;
  timer?: NodeJS.Timeout;
  inFlight?: Promise<void>;
  abort?: AbortController;
  /** The state last logged ('ok' or an error code): logs go out on changes, not on every failed poll. */
  logged: 'ok' | UpstreamErrorCode;
}

const log = rootLog.child({ component: 'http-poller' });
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Polls HTTP sensor endpoints and hands what they answer to the telemetry pipeline.
 * Each endpoint has its own timer chain, so one slow or dead endpoint never holds back another.
 */
export class HttpPoller {
  private readonly endpoints: Endpoint[];
  private readonly now: () => Date;
  private readonly random: () => number;
  private readonly maxFutureMs: number | undefined;
  // Own agents (keep-alive: the same hosts are asked every few seconds) so stop() can close their sockets.
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly http: AxiosInstance;
  private running = false;

  constructor(
    private readonly cfg: HttpPollingConfig,
    private readonly sink: TelemetrySink,
    opts: HttpPollerOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    this.maxFutureMs = opts.maxFutureMs;
    this.endpoints = cfg.endpoints.map((c) => ({
      cfg: c,
      logged: 'ok',
      status: {
        name: c.name,
        url: c.url,
        intervalSeconds: c.intervalSeconds,
        consecutiveFailures: 0,
        readings: 0,
        deadLetters: 0,
        skippedPolls: 0,
      },
    }));
    this.http = axios.create({
      httpAgent: this.agents.http,
      httpsAgent: this.agents.https,
      // Raw bytes, parsed here: a body that is not JSON (or not UTF-8) must reach the dead letters as it came.
      responseType: 'arraybuffer',
      // Every status is classified below; axios must not turn them into exceptions of its own.
      validateStatus: () => true,
      maxContentLength: MAX_BODY_BYTES,
      headers: { Accept: 'application/json', 'User-Agent': 'oee-data-hub' },
    });
  }

  /** Starts polling every endpoint now; a no-op when the section is disabled or already running. */
  start(): void {
    if (!this.cfg.enabled || this.running) return;
    this.running = true;
    for (const ep of this.endpoints) this.schedule(ep, 0);
  }

  /** Clears the timers, aborts requests in flight and resolves once every poll (and its submit) has settled. */
  async stop(): Promise<void> {
    this.running = false;
    for (const ep of this.endpoints) {
      clearTimeout(ep.timer);
      ep.timer = undefined;
      ep.status.nextPollAt = undefined;
      ep.abort?.abort();
    }
    await Promise.allSettled(this.endpoints.map((ep) => ep.inFlight));
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  status(): EndpointStatus[] {
    return this.endpoints.map((ep) => ({ ...ep.status }));
  }

  private schedule(ep: Endpoint, ms: number): void {
    clearTimeout(ep.timer);
    ep.timer = undefined;
    if (!this.running) return;
    ep.status.nextPollAt = new Date(this.now().getTime() + ms);
    ep.timer = setTimeout(() => this.tick(ep), ms);
  }

  private tick(ep: Endpoint): void {
    ep.timer = undefined;
    // Fixed rate: the next poll is due one interval after this one started. A failure replaces it with a backoff.
    this.schedule(ep, ep.cfg.intervalSeconds * 1000);
    if (ep.inFlight) {
      // Never two polls of one endpoint at once; the one running still has to get through the pipeline.
      ep.status.skippedPolls++;
      return;
    }
    ep.status.pollingSince = this.now();
    ep.inFlight = this.poll(ep).finally(() => {
      ep.inFlight = undefined;
      ep.status.pollingSince = undefined;
    });
  }

  private async poll(ep: Endpoint): Promise<void> {
    const { cfg, status } = ep;
    const abort = new AbortController();
    ep.abort = abort;
    // axios's `timeout` is a socket idle timer: a server that trickles bytes never trips it. This bounds the whole exchange.
    const deadline = setTimeout(() => abort.abort(), cfg.timeoutSeconds * 1000);
    const started = performance.now();
    let body: Buffer;
    try {
      body = await this.fetch(cfg, abort.signal);
    } catch (err) {
      if (!this.running) return; // stop() aborted it: not the endpoint's failure
      this.failed(ep, toFailure(err, cfg, abort.signal.aborted));
      return;
    } finally {
      clearTimeout(deadline);
      ep.abort = undefined;
      status.lastDurationMs = Math.round(performance.now() - started);
    }

    const receivedAt = this.now();
    let doc: unknown;
    try {
      doc = JSON.parse(utf8.decode(body));
    } catch (err) {
      // A 2xx that is not JSON (a login page, a truncated document) is kept as it came, and counts as a failure.
      const detail =
        err instanceof TypeError ? 'response is not valid UTF-8' : `response is not JSON: ${(err as Error).message}`;
      this.failed(ep, new PollFailure('UPSTREAM_BAD_RESPONSE', detail));
      await this.submit(
        ep,
        [],
        [{ reason: 'MALFORMED_PAYLOAD', detail, topic: cfg.url, payload: body }],
        receivedAt,
        false,
      );
      return;
    }

    this.answered(ep);
    const mapped = applyMapping(cfg.mapping, doc, { receivedAt, maxFutureMs: this.maxFutureMs });
    // The mapping knows neither the URL nor the bytes; dead letters (here or, for readings, later in the pipeline) should.
    const origin = { topic: cfg.url, payload: body };
    const readings = mapped.readings.map((r) => ({ ...r, origin }));
    const deadLetters = mapped.deadLetters.map((d) => ({ ...d, ...origin }));
    await this.submit(ep, readings, deadLetters, receivedAt, true);
  }

  /** The body of a 2xx answer, or a PollFailure saying why there is none. */
  private async fetch(cfg: HttpEndpointConfig, signal: AbortSignal): Promise<Buffer> {
    const res = await this.http.get<Buffer>(cfg.url, {
      headers: cfg.headers,
      timeout: cfg.timeoutSeconds * 1000,
      signal,
    });
    if (res.status >= 200 && res.status < 300) return Buffer.isBuffer(res.data) ? res.data : Buffer.from(res.data);
    // 5xx, 429 and 408 say "not now": the endpoint may recover by itself. Other statuses say our request is wrong.
    const transient = res.status >= 500 || res.status === 429 || res.status === 408;
    throw new PollFailure(
      transient ? 'UPSTREAM_UNAVAILABLE' : 'UPSTREAM_BAD_RESPONSE',
      `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
    );
  }

  /** Awaits the pipeline (its backpressure); counters move only when it has committed the batch. */
  private async submit(
    ep: Endpoint,
    readings: IncomingReading[],
    deadLetters: DeadLetter[],
    receivedAt: Date,
    usable: boolean,
  ): Promise<void> {
    const { status } = ep;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      // The pipeline logs its own failures; logging them again per endpoint and poll would only add noise.
      log.debug({ endpoint: ep.cfg.name, err: err.message }, 'pipeline did not commit an HTTP batch');
      status.consecutiveFailures++;
      status.lastFailureAt = this.now();
      status.lastError = `pipeline: ${err.message}`;
      status.lastErrorCode = undefined;
    };
    const ack = () => {
      if (settled) return;
      settled = true;
      status.readings += readings.length;
      status.deadLetters += deadLetters.length;
      if (usable) status.lastSuccessAt = receivedAt;
    };
    try {
      await this.sink.submit({ source: 'HTTP', readings, deadLetters, ack, fail });
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** The endpoint answered with JSON: back to the normal interval (already scheduled by tick). */
  private answered(ep: Endpoint): void {
    if (ep.logged !== 'ok') {
      log.info(
        { endpoint: ep.cfg.name, url: ep.cfg.url, failures: ep.status.consecutiveFailures },
        'HTTP sensor endpoint answers again',
      );
      ep.logged = 'ok';
    }
    ep.status.consecutiveFailures = 0;
  }

  private failed(ep: Endpoint, f: PollFailure): void {
    const { status, cfg } = ep;
    status.consecutiveFailures++;
    status.lastFailureAt = this.now();
    status.lastError = f.message;
    status.lastErrorCode = f.code;
    const delayMs = this.backoffMs(cfg, status.consecutiveFailures);
    if (ep.logged !== f.code) {
      log.warn(
        { endpoint: cfg.name, url: cfg.url, code: f.code, err: f.message, retryInMs: delayMs },
        'HTTP sensor endpoint failing; backing off',
      );
      ep.logged = f.code;
    }
    this.schedule(ep, delayMs);
  }

  /** interval·2ⁿ capped at backoff.maxSeconds, minus up to 20 % jitter so endpoints that failed together spread out. */
  private backoffMs(cfg: HttpEndpointConfig, failures: number): number {
    const capped = Math.min(cfg.backoff.maxSeconds, cfg.intervalSeconds * 2 ** Math.min(failures, 20));
    return Math.max(cfg.intervalSeconds, capped * (1 - 0.2 * this.random())) * 1000;
  }
}

function toFailure(err: unknown, cfg: HttpEndpointConfig, deadlinePassed: boolean): PollFailure {
  if (err instanceof PollFailure) return err;
  const timedOut = deadlinePassed || (isAxiosError(err) && (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT'));
  if (timedOut) return new PollFailure('UPSTREAM_UNAVAILABLE', `no complete answer within ${cfg.timeoutSeconds} s`);
  // Too large, too many redirects, a broken stream: the endpoint answered, but not with anything usable.
  if (isAxiosError(err) && (err.code === 'ERR_BAD_RESPONSE' || err.code === 'ERR_FR_TOO_MANY_REDIRECTS')) {
    return new PollFailure('UPSTREAM_BAD_RESPONSE', err.message);
  }
  // Refused, reset, DNS: nobody there right now.
  const e = err as { code?: string; message?: string };
  return new PollFailure('UPSTREAM_UNAVAILABLE', [e.code, e.message].filter(Boolean).join(': ') || String(err));
}
