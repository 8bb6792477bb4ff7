import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { HttpPollingConfigSchema, type HttpPollingConfig } from '../../lib/config/http-polling.ts';
import { HttpPoller, type HttpPollerOptions } from '../../lib/telemetry/sources/http-polling.ts';
import type { BatchOutcome, SourceBatch, TelemetrySink } from '../../lib/telemetry/types.ts';

const OUTCOME: BatchOutcome = { stored: 1, duplicate: 0, rejected: 0, deadLetters: 0, unresolved: 0 };
import { HTML_BODY, MALFORMED_BODY, startHttpSensor, type FakeHttpSensor } from '../fakes/http-sensor.ts';

// Taken before any test fakes the clock: the sockets are real and need real time to move.
const realSetTimeout = globalThis.setTimeout;
const realSleep = (ms: number) => new Promise<void>((r) => realSetTimeout(r, ms));

const realTurn = () => new Promise<void>((r) => setImmediate(r)); // setImmediate is not faked below

/**
 * The poller's timers run on a fake clock that moves only here, in 10 ms steps. After each step the sockets get
 * real time until every poll has finished, except polls of `stalled` paths (hang, slow, a held pipeline), which
 * only the fake clock can end. What happens at which (fake) second is then fixed, to within one step.
 */
async function advance(ms: number, stalled: string[] = []): Promise<void> {
  const busy = () =>
    pollers.some((p) =>
      p.endpointStatus().some((s) => s.pollingSince && !stalled.some((path) => s.url.endsWith(path))),
    );
  for (let done = 0; done < ms; done += 10) {
    await vi.advanceTimersByTimeAsync(Math.min(10, ms - done));
    await realTurn();
    await until(() => !busy(), 'the polls in flight to finish');
  }
}

/** Waits in real time (the fake clock stands still) for something the sockets still have to deliver. */
async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`);
    await realSleep(10);
  }
}

const mapping = {
  sensorId: { path: 'sensor' },
  values: [
    { path: 'value', sensorId: '{base}-TEMP' },
    { path: 'seq', sensorId: '{base}-SEQ' },
  ],
  timestamp: { path: 'ts', format: 'iso' },
};

function recordingSink(): TelemetrySink & { batches: SourceBatch[] } {
  const batches: SourceBatch[] = [];
  return {
    batches,
    async submit(batch) {
      batches.push(batch);
      batch.ack(OUTCOME);
    },
  };
}

/** The poller with its sink bound, as the tests start it (in the hub, the ingest hands every source the pipeline). */
class TestPoller extends HttpPoller {
  constructor(
    cfg: HttpPollingConfig,
    private readonly boundSink: TelemetrySink,
    opts?: HttpPollerOptions,
  ) {
    super(cfg, opts);
  }
  override start(): Promise<void> {
    return super.start(this.boundSink);
  }
}

let sensor: FakeHttpSensor;
const pollers: TestPoller[] = [];

function poller(endpoints: Record<string, unknown>[], sink: TelemetrySink = recordingSink()): TestPoller {
  const cfg = HttpPollingConfigSchema.parse({
    enabled: true,
    endpoints: endpoints.map(({ path, url, ...rest }) => ({
      url: url ?? `${sensor.url}${path}`,
      intervalSeconds: 1,
      timeoutSeconds: 0.5,
      mapping,
      ...rest,
    })),
  });
  // random 0: the backoff is its un-jittered upper bound, so request counts are exact.
  const p = new TestPoller(cfg, sink, { random: () => 0 });
  pollers.push(p);
  return p;
}

const statusOf = (p: HttpPoller, name: string) =>
  p.endpointStatus().find((s) => s.name === name || s.url.endsWith(name))!;

beforeAll(async () => {
  sensor = await startHttpSensor();
});
afterAll(async () => {
  await sensor.close();
});
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
  vi.useRealTimers();
});

describe('HTTP poller', () => {
  it('maps each answered document to readings with the mapped sensor ids and the document timestamps', async () => {
    sensor.setMode('/oven', 'ok', { sensor: 'OVEN-1' });
    const sink = recordingSink();
    const p = poller([{ path: '/oven' }], sink);
    p.start();
    await advance(100);
    await advance(1000);

    const docs = sensor.served('/oven');
    expect(docs).toHaveLength(2);
    expect(sink.batches.map((b) => ({ source: b.source, readings: b.readings, deadLetters: b.deadLetters }))).toEqual(
      docs.map((d) => ({
        source: 'HTTP',
        readings: [
          {
            sensorId: 'OVEN-1-TEMP',
            ts: new Date(d.ts),
            value: d.value,
            origin: { topic: `${sensor.url}/oven`, payload: Buffer.from(JSON.stringify(d)) },
          },
          {
            sensorId: 'OVEN-1-SEQ',
            ts: new Date(d.ts),
            value: d.seq,
            origin: { topic: `${sensor.url}/oven`, payload: Buffer.from(JSON.stringify(d)) },
          },
        ],
        deadLetters: [],
      })),
    );
    expect(docs[1]!.value).not.toBe(docs[0]!.value);
    const s = statusOf(p, '/oven');
    expect(s).toMatchObject({ readings: 4, deadLetters: 0, consecutiveFailures: 0, skippedPolls: 0 });
    expect(s.lastSuccessAt).toBeInstanceOf(Date);
    expect(s.lastErrorCode).toBeUndefined();
  });

  it('polls nothing when the section is disabled', async () => {
    sensor.setMode('/off', 'ok');
    const cfg = HttpPollingConfigSchema.parse({ enabled: false, endpoints: [{ url: `${sensor.url}/off`, mapping }] });
    const p = new TestPoller(cfg, recordingSink());
    pollers.push(p);
    p.start();
    await advance(2000);
    expect(sensor.requests('/off')).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps polling an ok endpoint on time while another endpoint at the same interval hangs', async () => {
    sensor.setMode('/hung', 'hang');
    sensor.setMode('/fine', 'ok');
    const sink = recordingSink();
    // The hanging endpoint comes first: a poller that took endpoints one after the other would wait on it.
    const p = poller(
      [
        { path: '/hung', timeoutSeconds: 1 },
        { path: '/fine', timeoutSeconds: 1 },
      ],
      sink,
    );
    p.start();
    await advance(100, ['/hung']);
    await until(() => sensor.requests('/hung') === 1 && sink.batches.length === 1, 'both first requests');
    // Mid-hang: the ok endpoint has been answered and handed on while the other request is still open.
    expect(statusOf(p, '/hung')).toMatchObject({ consecutiveFailures: 0, readings: 0 });
    expect(statusOf(p, '/hung').lastFailureAt).toBeUndefined();

    await advance(9900, ['/hung']); // t = 10 s
    expect(sensor.requests('/fine')).toBe(11); // t = 0, 1, …, 10: not one poll lost to the hanging neighbour
    expect(sink.batches).toHaveLength(11);
    // The hanging one: cut at 1 s, then backed off 2 s and 4 s → asked at 0, 3 and 8 s.
    expect(sensor.requests('/hung')).toBe(3);
    expect(statusOf(p, '/hung')).toMatchObject({ consecutiveFailures: 3, lastErrorCode: 'UPSTREAM_UNAVAILABLE' });
  });

  it('reports a timeout as UPSTREAM_UNAVAILABLE with the count of consecutive failures', async () => {
    sensor.setMode('/sluggish', 'slow', { delayMs: 5000 });
    const p = poller([{ path: '/sluggish', intervalSeconds: 2, timeoutSeconds: 0.5 }]);
    p.start();
    await advance(400, ['/sluggish']);
    expect(sensor.requests('/sluggish')).toBe(1);
    expect(statusOf(p, '/sluggish')).toMatchObject({ consecutiveFailures: 0 });

    await advance(200, ['/sluggish']); // t = 0.6 s: past the 0.5 s timeout
    const first = statusOf(p, '/sluggish');
    expect(first).toMatchObject({ consecutiveFailures: 1, lastErrorCode: 'UPSTREAM_UNAVAILABLE' });
    expect(first.lastError).toMatch(/within 0.5 s/);
    expect(first.lastFailureAt!.getTime()).toBe(first.nextPollAt!.getTime() - 4000); // backoff: 2 s · 2¹

    await advance(4600, ['/sluggish']); // t = 5.2 s: asked again at 4.5 s, timed out at 5.0 s
    expect(sensor.requests('/sluggish')).toBe(2);
    const second = statusOf(p, '/sluggish');
    expect(second).toMatchObject({ consecutiveFailures: 2, lastErrorCode: 'UPSTREAM_UNAVAILABLE', readings: 0 });
    expect(second.nextPollAt!.getTime() - second.lastFailureAt!.getTime()).toBe(8000);
    expect(sensor.served('/sluggish')).toEqual([]); // the slow answers were never waited for
  });

  it('cuts a response that stalls after its headers at the timeout', async () => {
    // Headers arrived, so only the poller's own deadline can end this one: axios's timeout is a socket idle timer.
    sensor.setMode('/stalled', 'trickle');
    const sink = recordingSink();
    const p = poller([{ path: '/stalled', intervalSeconds: 10, timeoutSeconds: 5 }], sink);
    p.start();
    await advance(4900, ['/stalled']);
    expect(statusOf(p, '/stalled').pollingSince).toBeInstanceOf(Date);
    await advance(200, ['/stalled']);
    await until(() => statusOf(p, '/stalled').consecutiveFailures === 1, 'the stalled poll to be cut');
    expect(statusOf(p, '/stalled')).toMatchObject({
      lastErrorCode: 'UPSTREAM_UNAVAILABLE',
      lastError: 'no complete answer within 5 s',
    });
    expect(sink.batches).toEqual([]); // half a document is not a malformed one: it never arrived
  });

  it(`backs off from a failing endpoint up to backoff.maxSeconds, \
then returns to the interval after a success`, async () => {
    sensor.setMode('/flaky', '500');
    const sink = recordingSink();
    const p = poller([{ path: '/flaky', intervalSeconds: 1, backoff: { maxSeconds: 8 } }], sink);
    p.start();
    await advance(20_000);
    // Every second would be 21 requests; backing off 2, 4, 8, 8 s asks at 0, 2, 6 and 14 s.
    expect(sensor.requests('/flaky')).toBe(4);
    const failing = statusOf(p, '/flaky');
    expect(failing).toMatchObject({
      consecutiveFailures: 4,
      lastErrorCode: 'UPSTREAM_UNAVAILABLE',
      lastError: 'HTTP 500 Internal Server Error',
    });
    expect(failing.nextPollAt!.getTime() - failing.lastFailureAt!.getTime()).toBe(8000); // capped

    sensor.setMode('/flaky', 'ok', { sensor: 'F' });
    await advance(2100); // t = 22.1 s: the backed-off poll at 22 s succeeds
    expect(sensor.requests('/flaky')).toBe(5);
    const recovered = statusOf(p, '/flaky');
    expect(recovered.consecutiveFailures).toBe(0);
    expect(recovered.lastSuccessAt).toBeInstanceOf(Date);
    expect(sink.batches).toHaveLength(1);

    await advance(3000); // t = 25.1 s: every second again
    expect(sensor.requests('/flaky')).toBe(8);
  });

  it('classifies 429 and refused connections as unavailable, other 4xx as a bad response', async () => {
    sensor.setMode('/busy', '429');
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const p = poller([
      { path: '/busy' },
      { path: '/no-such-sensor' },
      { name: 'gone', url: `http://127.0.0.1:${closedPort}/x` },
    ]);
    p.start();
    await advance(100);
    await until(() => p.endpointStatus().every((s) => s.consecutiveFailures === 1), 'three failures');
    expect(statusOf(p, '/busy')).toMatchObject({
      lastErrorCode: 'UPSTREAM_UNAVAILABLE',
      lastError: 'HTTP 429 Too Many Requests',
    });
    expect(statusOf(p, '/no-such-sensor')).toMatchObject({
      lastErrorCode: 'UPSTREAM_BAD_RESPONSE',
      lastError: 'HTTP 404 Not Found',
    });
    expect(statusOf(p, 'gone').lastErrorCode).toBe('UPSTREAM_UNAVAILABLE');
    expect(statusOf(p, 'gone').lastError).toMatch(/ECONNREFUSED/);
    // A 404 is backed off too: asking again every second will not make the URL right.
    await advance(1000);
    expect(sensor.requests('/no-such-sensor')).toBe(1);
  });

  it('turns a 2xx body that is not JSON into a MALFORMED_PAYLOAD dead letter with the raw body', async () => {
    sensor.setMode('/truncated', 'malformed');
    sensor.setMode('/login', 'html');
    const sink = recordingSink();
    const p = poller([{ path: '/truncated' }, { path: '/login' }], sink);
    p.start();
    await advance(100);
    await until(() => sink.batches.length === 2, 'two batches');

    for (const [path, body] of [
      ['/truncated', MALFORMED_BODY],
      ['/login', HTML_BODY],
    ] as const) {
      const batch = sink.batches.find((b) => b.deadLetters[0]?.topic === `${sensor.url}${path}`)!;
      expect(batch.readings).toEqual([]);
      expect(batch.deadLetters).toHaveLength(1);
      expect(batch.deadLetters[0]).toMatchObject({ reason: 'MALFORMED_PAYLOAD', topic: `${sensor.url}${path}` });
      expect(Buffer.isBuffer(batch.deadLetters[0]!.payload)).toBe(true);
      expect(batch.deadLetters[0]!.payload!.toString('utf8')).toBe(body);
      const s = statusOf(p, path);
      expect(s).toMatchObject({
        consecutiveFailures: 1,
        lastErrorCode: 'UPSTREAM_BAD_RESPONSE',
        readings: 0,
        deadLetters: 1,
      });
      expect(s.lastSuccessAt).toBeUndefined();
    }
  });

  it('gives the dead letters of the mapping the url and the document', async () => {
    sensor.setMode('/partial', 'ok', { sensor: 'P' });
    const sink = recordingSink();
    const p = poller(
      [
        {
          path: '/partial',
          mapping: {
            sensorId: { path: 'sensor' },
            values: [{ path: 'value' }, { path: 'humidity', sensorId: 'P-HUM' }],
          },
        },
      ],
      sink,
    );
    p.start();
    await advance(100);
    await until(() => sink.batches.length === 1, 'one batch');
    const [batch] = sink.batches;
    expect(batch!.readings.map((r) => r.sensorId)).toEqual(['P.value']);
    expect(batch!.deadLetters).toHaveLength(1);
    expect(batch!.deadLetters[0]).toMatchObject({
      reason: 'UNMAPPABLE_PAYLOAD',
      sensorId: 'P-HUM',
      topic: `${sensor.url}/partial`,
    });
    expect(JSON.parse(batch!.deadLetters[0]!.payload!.toString('utf8'))).toEqual(sensor.served('/partial')[0]);
    expect(statusOf(p, '/partial')).toMatchObject({ readings: 1, deadLetters: 1, consecutiveFailures: 0 });
  });

  it('skips and counts polls that come due while the pipeline still holds the previous batch', async () => {
    sensor.setMode('/pressed', 'ok');
    const waiting: Array<() => void> = [];
    const release = () =>
      waiting.splice(0).forEach((go) => {
        go();
      });
    const sink: TelemetrySink = {
      submit: (batch) =>
        new Promise<void>((resolve) => {
          waiting.push(() => {
            batch.ack(OUTCOME);
            resolve();
          });
        }),
    };
    const p = poller([{ path: '/pressed' }], sink);
    p.start();
    try {
      await advance(3500, ['/pressed']); // due at 1, 2 and 3 s while the first submit is pending
      expect(sensor.requests('/pressed')).toBe(1);
      expect(statusOf(p, '/pressed')).toMatchObject({ skippedPolls: 3, readings: 0 });

      release();
      await advance(600, ['/pressed']); // t = 4.1 s
      expect(sensor.requests('/pressed')).toBe(2);
      expect(statusOf(p, '/pressed')).toMatchObject({ skippedPolls: 3, readings: 2 });
    } finally {
      release(); // else stop() in afterEach would wait on the held submit
    }
  });

  it('stop() aborts requests in flight and leaves no timers and no sockets', async () => {
    sensor.setMode('/stay', 'ok');
    sensor.setMode('/stuck', 'hang');
    const p = poller([
      { path: '/stay', timeoutSeconds: 1 },
      { path: '/stuck', timeoutSeconds: 1 },
    ]);
    p.start();
    await advance(100, ['/stuck']);
    await until(() => sensor.requests('/stuck') === 1 && sensor.requests('/stay') === 1, 'both requests');
    expect(sensor.openConnections()).toBeGreaterThanOrEqual(2); // the hung one and the kept-alive one
    expect(vi.getTimerCount()).toBeGreaterThan(0);

    // The clock does not move while stop() is awaited: it settles only if the hung request is aborted.
    await p.stop();
    // follow-redirects clears its request timer on the aborted request's 'close', one event-loop turn later.
    await until(() => vi.getTimerCount() === 0, 'no timers left');
    await until(() => sensor.openConnections() === 0, 'the sockets to close');
    // Nothing left that would keep the process alive but the fake sensor's listening socket.
    expect(process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap')).toEqual([]);
    expect(p.endpointStatus().every((s) => s.nextPollAt === undefined)).toBe(true);
    expect(statusOf(p, '/stuck').consecutiveFailures).toBe(0); // stopping is not the endpoint's failure

    await advance(3000);
    expect(sensor.requests('/stay')).toBe(1);
    expect(sensor.requests('/stuck')).toBe(1);
  });
});
