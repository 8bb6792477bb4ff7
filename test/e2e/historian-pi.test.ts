import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionSchema } from '../../lib/config/connection.ts';
import { UpstreamError } from '../../lib/connectors/errors.ts';
import { PiWebApiConnector } from '../../lib/connectors/historian/pi.ts';
import { wireTimeMs as piTimeMs } from '../../lib/connectors/historian/wire-time.ts';
import type { HistorianPoint, HistorianTag, RefusedPoint } from '../../lib/connectors/historian/types.ts';
import { type FakePiWebApi, startPiWebApi } from '../fakes/pi-web-api.ts';
import { equalRun, series, systemState } from '../fakes/pi-web-api-data.ts';

// The PI Web API connector against the fake (reference/protocols.md §1). No database: the connector only speaks HTTP.
// Every expectation is written from the truth put into the fake here, never from what the connector returns.
const T0 = Date.UTC(2024, 4, 1, 6, 0, 0); // 2024-05-01T06:00:00Z
const S = '\\\\PISRV1\\';
const CAP = 150_000; // PI's default MaxReturnedItemsPerCall

let pi: FakePiWebApi;
const open: PiWebApiConnector[] = [];

function connector(maxCount: number, password = 'pi-password-1') {
  const connection = ConnectionSchema.parse({
    baseUrl: pi.url,
    auth: { type: 'basic', username: 'piuser', password },
    timeoutSeconds: 5,
    retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
  });
  const c = new PiWebApiConnector({ name: 'PI-TEST', connection, maxCount });
  open.push(c);
  return c;
}

/** The tag as resolveTags would give it, built from the fake's truth so read tests do not depend on resolving. */
const tagOf = (name: string): HistorianTag => {
  const t = pi.tags.get(`${S}${name}`.toUpperCase())!;
  return { tag: t.path, ref: t.webId, type: t.type, units: t.units };
};

async function readAll(c: PiWebApiConnector, name: string, from: number, to: number) {
  const points: HistorianPoint[] = [];
  const refused: RefusedPoint[] = [];
  for await (const p of c.recorded(tagOf(name), new Date(from), new Date(to))) {
    points.push(...p.points);
    refused.push(...p.refused);
  }
  return { points, refused };
}

/** [ms, value] pairs of numeric points: what the truth's series give. */
const pairs = (ps: HistorianPoint[]) => ps.map((p) => [p.ts.getTime(), p.value]);
const recordedCalls = () => pi.trace.filter((t) => t.path.endsWith('/recorded'));
const failure = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UpstreamError);
  return e as UpstreamError;
};
const drain = async (it: AsyncIterable<unknown>) => {
  for await (const _ of it);
};

beforeAll(async () => {
  pi = await startPiWebApi({ maxReturnedItemsPerCall: CAP });
  pi.addTag(`${S}MANY`, { units: 'm3/h', events: series(T0, 2500, 1000, (i) => i) });
  // 995 single values, then 10 at one timestamp across the 1000-item page boundary (items 996..1005), then 100.
  pi.addTag(`${S}STRADDLE`, {
    events: [
      ...series(T0, 995, 1000),
      ...equalRun(T0 + 995_000, 10, 995),
      ...series(T0 + 996_000, 100, 1000, (i) => 1005 + i),
    ],
  });
  // 50 values at one timestamp between ordinary ones: longer than a 20-item page.
  pi.addTag(`${S}BURST`, {
    events: [...series(T0, 5, 1000), ...equalRun(T0 + 5000, 50, 5), ...series(T0 + 6000, 5, 1000, (i) => 55 + i)],
  });
  pi.addTag(`${S}CAPPED`, { events: series(T0, 700, 1000, (i) => i * 0.5) });
  pi.addTag(`${S}PUMP1.MODE`, {
    type: 'Digital',
    digitalSet: { name: 'PumpModes', states: ['Off', 'Manual', 'Auto'] },
    events: [
      { ts: T0, value: 'Auto' },
      { ts: T0 + 1000, value: systemState('Pt Created') },
      { ts: T0 + 2000, value: { Errors: ['Point not found'] } },
      { ts: T0 + 3000, value: 'Manual', questionable: true },
      { ts: T0 + 4000, value: 'Off', substituted: true },
    ],
  });
  pi.addTag(`${S}ODD`, {
    type: 'String',
    events: [
      { ts: T0, value: 'running' },
      { ts: T0 + 1000, value: true },
      { ts: T0 + 2000, value: false },
      { ts: T0 + 3000, value: 7.25 },
    ],
  });
  // Berlin's spring-forward night: local 00:00 CET (23:00Z) to 05:00 CEST (03:00Z) is 4 hours, one value a minute.
  pi.addTag(`${S}DST`, { events: series(Date.UTC(2026, 2, 28, 23), 240, 60_000) });
});
afterEach(() => {
  pi.setMode('ok');
  pi.maxReturnedItemsPerCall = CAP;
  pi.trace.length = 0;
});
afterAll(async () => {
  for (const c of open) c.close();
  await pi.close();
});

describe('PI Web API connector: paging by time', () => {
  it('reads 2,500 values at maxCount 1000 exactly, over several pages', async () => {
    const { points } = await readAll(connector(1000), 'MANY', T0, T0 + 3_600_000);
    expect(pairs(points)).toEqual(Array.from({ length: 2500 }, (_, i) => [T0 + i * 1000, i]));
    expect(points.every((p) => p.quality === 100)).toBe(true);
    expect(recordedCalls().length).toBe(3);
  });

  it('keeps an equal-timestamp run that straddles a page boundary: none lost, none doubled', async () => {
    const { points } = await readAll(connector(1000), 'STRADDLE', T0, T0 + 3_600_000);
    expect(points.map((p) => p.value)).toEqual(Array.from({ length: 1105 }, (_, i) => i));
    const run = points.filter((p) => p.ts.getTime() === T0 + 995_000).map((p) => p.value);
    expect(run).toEqual([995, 996, 997, 998, 999, 1000, 1001, 1002, 1003, 1004]);
  });

  it('reads a run longer than a page with a wider call, without looping or losing a value', async () => {
    const { points } = await readAll(connector(20), 'BURST', T0, T0 + 60_000);
    expect(points.map((p) => p.value)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(recordedCalls().length).toBeLessThan(10);
  });

  it('fails with a typed error naming the tag and timestamp when the run exceeds the server cap', async () => {
    pi.maxReturnedItemsPerCall = 30;
    const e = await failure(readAll(connector(20), 'BURST', T0, T0 + 60_000));
    expect(e.code).toBe('UPSTREAM_BAD_RESPONSE');
    expect(e.message).toContain('BURST');
    expect(e.message).toContain('2024-05-01T06:00:05.000Z');
  }, 10_000);

  it('lowers maxCount when the server refuses it (400), keeps it lowered, and still reads exactly', async () => {
    pi.maxReturnedItemsPerCall = 300;
    const c = connector(1000);
    const { points } = await readAll(c, 'CAPPED', T0, T0 + 3_600_000);
    expect(pairs(points)).toEqual(Array.from({ length: 700 }, (_, i) => [T0 + i * 1000, i * 0.5]));
    expect(recordedCalls().map((t) => t.answered)).toEqual([400, 400, 200, 200, 200]); // 1000, 500, then 250s
    expect(c.maxCount).toBe(250);
    pi.trace.length = 0;
    await readAll(c, 'CAPPED', T0, T0 + 3_600_000);
    expect(recordedCalls().map((t) => t.answered)).toEqual([200, 200, 200]);
  });

  it('reads [from, to): a value at `from` is in, one at `to` is out', async () => {
    const { points } = await readAll(connector(1000), 'MANY', T0 + 10_000, T0 + 20_000);
    expect(pairs(points)).toEqual(Array.from({ length: 10 }, (_, i) => [T0 + (10 + i) * 1000, 10 + i]));
    const empty = await readAll(connector(1000), 'MANY', T0 + 20_000, T0 + 20_000);
    expect(empty.points).toEqual([]);
  });

  it('reads a range over a DST change in UTC: 4 hours of values across Berlin spring-forward, none lost', async () => {
    // 2026-03-29 00:00 Europe/Berlin (CET) .. 05:00 (CEST): 02:00-03:00 local does not exist; 240 minutes do.
    const from = Date.parse('2026-03-29T00:00:00+01:00');
    const to = Date.parse('2026-03-29T05:00:00+02:00');
    const { points } = await readAll(connector(100), 'DST', from, to);
    expect(points.length).toBe(240);
    expect(points.map((p) => p.value)).toEqual(Array.from({ length: 240 }, (_, i) => i));
    expect(points[120]!.ts.toISOString()).toBe('2026-03-29T01:00:00.000Z'); // the local hour that is skipped
  });

  it('parses PI timestamps as UTC, cutting digits below the millisecond', () => {
    expect(piTimeMs('2024-05-01T06:00:07.1239999Z')).toBe(Date.UTC(2024, 4, 1, 6, 0, 7, 123));
    expect(piTimeMs('2024-05-01T08:00:07.25+02:00')).toBe(Date.UTC(2024, 4, 1, 6, 0, 7, 250));
    expect(piTimeMs('2024-05-01T06:00:07Z')).toBe(Date.UTC(2024, 4, 1, 6, 0, 7));
  });
});

describe('PI Web API connector: values', () => {
  it('maps digital states and system states, with PI quality flags', async () => {
    const { points, refused } = await readAll(connector(1000), 'PUMP1.MODE', T0, T0 + 60_000);
    expect(points.map((p) => [p.ts.getTime(), p.value, p.quality])).toEqual([
      [T0, { state: 'Auto', code: 2 }, 100],
      [T0 + 1000, { state: 'Pt Created', code: 253 }, 0], // a system state, Good: false
      [T0 + 3000, { state: 'Manual', code: 1 }, 50],
      [T0 + 4000, { state: 'Off', code: 0 }, 70],
    ]);
    expect(refused).toEqual([
      {
        ts: new Date(T0 + 2000),
        reason: expect.stringContaining('Point not found'),
        raw: { Errors: ['Point not found'] },
      },
    ]);
  });

  it('refuses a string value with a reason and stores booleans as 1/0', async () => {
    const { points, refused } = await readAll(connector(1000), 'ODD', T0, T0 + 60_000);
    expect(pairs(points)).toEqual([
      [T0 + 1000, 1],
      [T0 + 2000, 0],
      [T0 + 3000, 7.25],
    ]);
    expect(refused).toEqual([{ ts: new Date(T0), reason: expect.stringMatching(/text/), raw: 'running' }]);
  });
});

describe('PI Web API connector: errors', () => {
  it('turns a WebException in a 200 into UPSTREAM_UNAVAILABLE (its StatusCode is 500)', async () => {
    pi.setMode('webException', { times: 1 });
    const e = await failure(readAll(connector(1000), 'MANY', T0, T0 + 10_000));
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.message).toContain('WebException');
  });

  it('retries a burst of 503s and still reads exactly', async () => {
    pi.setMode('status', { status: 503, times: 2 });
    const { points } = await readAll(connector(1000), 'MANY', T0, T0 + 10_000);
    expect(pairs(points)).toEqual(Array.from({ length: 10 }, (_, i) => [T0 + i * 1000, i]));
    expect(recordedCalls().map((t) => t.answered)).toEqual([503, 503, 200]);
  });

  it('fails a 401 with a typed error and does not retry it', async () => {
    const c = connector(1000, 'wrong-password');
    const e = await failure(drain(c.recorded(tagOf('MANY'), new Date(T0), new Date(T0 + 10_000))));
    expect(e.code).toBe('UPSTREAM_BAD_RESPONSE');
    expect(e.upstream.status).toBe(401);
    expect(recordedCalls().map((t) => t.answered)).toEqual([401]);
  });
});

describe('PI Web API connector: resolving tags', () => {
  it('resolves in bulk and reports the failed paths of a 207 with the historian reason', async () => {
    const { resolved, failed } = await connector(1000).resolveTags([`${S}MANY`, `${S}NOPE`, `${S}PUMP1.MODE`]);
    expect(resolved).toEqual([
      { tag: `${S}MANY`, ref: tagOf('MANY').ref, type: 'Float32', units: 'm3/h' },
      { tag: `${S}PUMP1.MODE`, ref: tagOf('PUMP1.MODE').ref, type: 'Digital', units: null },
    ]);
    expect(failed).toEqual([{ tag: `${S}NOPE`, reason: expect.stringMatching(/NOPE.*not found/) }]);
    expect(pi.trace.map((t) => [t.path, t.answered])).toEqual([['/piwebapi/points/multiple', 207]]);
  });

  it('splits many paths into calls of at most 100', async () => {
    const names = Array.from({ length: 250 }, (_, i) => `${S}BULK${i}`);
    for (const n of names.slice(0, 200)) pi.addTag(n);
    const { resolved, failed } = await connector(1000).resolveTags(names);
    expect(resolved.map((r) => r.tag)).toEqual(names.slice(0, 200));
    expect(failed.map((f) => f.tag)).toEqual(names.slice(200));
    expect(pi.trace.map((t) => t.answered)).toEqual([200, 200, 207]);
  });
});
