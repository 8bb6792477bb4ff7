import { hostname } from 'node:os';
import { type HttpEndpointConfig, type HttpPollingConfig, redactUrl } from '../../config/http-polling.ts';
import { UpstreamError } from '../../connectors/errors.ts';
import { UpstreamClient } from '../../connectors/http.ts';
import { log as rootLog, type Logger } from '../../log.ts';
import { applyMapping } from '../json-mapping.ts';
import type { SourceContext, SourceStatus, TelemetrySource } from '../source.ts';
import type { DeadLetter, IncomingReading, TelemetrySink } from '../types.ts';
import { saveEndpointStatus, type EndpointStatus, type UpstreamErrorCode } from './http-status.repo.ts';

export interface HttpPollerOptions {
  now?: () => Date;
  /** 0 ≤ x < 1, for the backoff jitter; injectable so tests can pin it. */
  random?: () => number;
  /**
   * Readings stamped later than receipt + this are dead letters; pass iot.yml pipeline.maxFutureSeconds. Default 5 min.
   */
  maxFutureMs?: number;
  /** How often the endpoints' status is saved for the iot subgraph (default 2 s; only when started with a db). */
  statusIntervalMs?: number;
}

/** A sensor document is a few KB; a body this large means the URL points at something else. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Why a poll brought nothing usable, in the words the endpoint status shows. */
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
  /** The shared upstream client (deadline, typed errors), without retries: the poll schedule is the retry. */
  client: UpstreamClient;
  status: EndpointStatus;
  timer?: NodeJS.Timeout;
  inFlight?: Promise<void>;
  abort?: AbortController;
  /** The state last logged ('ok' or an error code): logs go out on changes, not on every failed poll. */
  logged: 'ok' | UpstreamErrorCode;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Polls HTTP sensor endpoints (iot.yml http) and hands what they answer to the telemetry pipeline.
 * Each endpoint has its own timer chain, so one slow or dead endpoint never holds back another.
 */
export class HttpPoller implements TelemetrySource {
  readonly name = 'http';
  readonly kind = 'HTTP' as const;
  private readonly endpoints: Endpoint[];
  private readonly now: () => Date;
  private readonly random: () => number;
  private readonly maxFutureMs: number | undefined;
  private sink: TelemetrySink | undefined;
  private log: Logger = rootLog.child({ source: 'http' });
  private running = false;
  private stopped = false;
  private statusTimer: NodeJS.Timeout | undefined;
  private saveStatus: (() => Promise<void>) | undefined;

  constructor(
    private readonly cfg: HttpPollingConfig,
    private readonly opts: HttpPollerOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    this.maxFutureMs = opts.maxFutureMs;
    this.endpoints = cfg.endpoints.map((c) => ({
      cfg: c,
      client: new UpstreamClient(
        c.name,
        {
          baseUrl: c.url,
          auth: { type: 'none' },
          timeoutSeconds: c.timeoutSeconds,
          retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
          headers: { 'user-agent': 'oee-data-hub', ...c.headers },
        },
        { maxBodyBytes: MAX_BODY_BYTES, maxRedirects: 5 },
      ),
      logged: 'ok',
      status: {
        name: c.name,
        // As status, dead letters and logs show it: credentials masked, once, here.
        url: redactUrl(c.url),
        intervalSeconds: c.intervalSeconds,
        consecutiveFailures: 0,
        readings: 0,
        deadLetters: 0,
        skippedPolls: 0,
      },
    }));
  }

  /**
   * Starts polling every endpoint now; a no-op when the section is disabled or already running. With a database in
   * `ctx`, the endpoints' status is saved every couple of seconds: the iot subgraph (another process) serves it.
   */
  async start(sink: TelemetrySink, ctx?: SourceContext): Promise<void> {
    if (!this.cfg.enabled || this.running) return;
    this.sink = sink;
    if (ctx) this.log = ctx.log.child({ source: this.name });
    this.running = true;
    for (const ep of this.endpoints) this.schedule(ep, 0);
    if (ctx) {
      const worker = ctx.worker || hostname();
      this.saveStatus = () =>
        saveEndpointStatus(ctx.db, worker, this.endpointStatus()).catch((err) =>
          this.log.warn({ err: err.message }, 'http status not saved'),
        );
      // A couple of seconds old is fresh enough for a status page.
      this.statusTimer = setInterval(this.saveStatus, this.opts.statusIntervalMs ?? 2000);
      this.statusTimer.unref();
    }
  }

  /** Clears the timers, aborts requests in flight and resolves once every poll (and its submit) has settled. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    clearInterval(this.statusTimer);
    for (const ep of this.endpoints) {
      clearTimeout(ep.timer);
      ep.timer = undefined;
      ep.status.nextPollAt = undefined;
      ep.abort?.abort();
    }
    await Promise.allSettled(this.endpoints.map((ep) => ep.inFlight));
    for (const ep of this.endpoints) ep.client.close();
    await this.saveStatus?.();
  }

  /** Each endpoint's own status (the httpEndpoints query). */
  endpointStatus(): EndpointStatus[] {
    return this.endpoints.map((ep) => ({ ...ep.status }));
  }

  /** Endpoints that fail do not make the ingest unready: the others, and every other source, still deliver. */
  status(): SourceStatus {
    const all = this.endpoints.map((ep) => ep.status);
    const failing = all.filter((s) => s.consecutiveFailures > 0).length;
    const sum = (k: 'readings' | 'deadLetters' | 'skippedPolls') => all.reduce((n, s) => n + s[k], 0);
    return {
      name: this.name,
      kind: this.kind,
      state: this.stopped ? 'STOPPED' : !this.running ? 'STARTING' : failing ? 'DEGRADED' : 'RUNNING',
      ready: true,
      problem: failing ? `${failing} of ${all.length} endpoints failing (query httpEndpoints)` : undefined,
      counters: {
        endpoints: all.length,
        failing,
        readings: sum('readings'),
        deadLetters: sum('deadLetters'),
        skippedPolls: sum('skippedPolls'),
      },
    };
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
    // The client bounds the exchange too; this deadline runs on the poller's clock, so the schedule and the
    // deadline of a poll can never disagree (and tests can move both).
    const deadline = setTimeout(() => abort.abort(), cfg.timeoutSeconds * 1000);
    const started = performance.now();
    let body: Buffer;
    try {
      body = (await ep.client.request({ url: cfg.url, signal: abort.signal })).body;
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
        [{ reason: 'MALFORMED_PAYLOAD', detail, topic: ep.status.url, payload: body }],
        receivedAt,
        false,
      );
      return;
    }

    this.answered(ep);
    const mapped = applyMapping(cfg.mapping, doc, { receivedAt, maxFutureMs: this.maxFutureMs });
    // The mapping knows neither the URL nor the bytes; dead letters (here or, for readings, later in the pipeline)
    // should.
    const origin = { topic: ep.status.url, payload: body };
    const readings = mapped.readings.map((r) => ({ ...r, origin }));
    const deadLetters = mapped.deadLetters.map((d) => ({ ...d, ...origin }));
    await this.submit(ep, readings, deadLetters, receivedAt, true);
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
      this.log.debug({ endpoint: ep.cfg.name, err: err.message }, 'pipeline did not commit an HTTP batch');
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
      await this.sink!.submit({ source: 'HTTP', readings, deadLetters, ack, fail });
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** The endpoint answered with JSON: back to the normal interval (already scheduled by tick). */
  private answered(ep: Endpoint): void {
    if (ep.logged !== 'ok') {
      this.log.info(
        { endpoint: ep.cfg.name, url: ep.status.url, failures: ep.status.consecutiveFailures },
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
      this.log.warn(
        { endpoint: cfg.name, url: ep.status.url, code: f.code, err: f.message, retryInMs: delayMs },
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

/** The endpoint status's words for what the shared client reported. */
function toFailure(err: unknown, cfg: HttpEndpointConfig, deadlinePassed: boolean): PollFailure {
  const t = err instanceof UpstreamError ? err.transport : undefined;
  if (!(err instanceof UpstreamError) || !t) return new PollFailure('UPSTREAM_UNAVAILABLE', String(err));
  const code = err.code as UpstreamErrorCode;
  // 5xx, 429 and 408 are UPSTREAM_UNAVAILABLE (the endpoint may recover by itself); other statuses say our request
  // is wrong (UPSTREAM_BAD_RESPONSE).
  if (t.status !== undefined) return new PollFailure(code, `HTTP ${t.status}${t.statusText ? ` ${t.statusText}` : ''}`);
  if (deadlinePassed || t.timedOut || t.aborted) {
    return new PollFailure('UPSTREAM_UNAVAILABLE', `no complete answer within ${cfg.timeoutSeconds} s`);
  }
  // Too large, too many redirects: the endpoint answered, but not with anything usable.
  if (code === 'UPSTREAM_BAD_RESPONSE') return new PollFailure(code, t.detail ?? err.message);
  // Refused, reset, DNS: nobody there right now.
  return new PollFailure(code, [t.code, t.detail].filter(Boolean).join(': ') || err.message);
}
