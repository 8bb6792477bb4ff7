import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionSchema } from '../../lib/config/connection.ts';
import { UpstreamError } from '../../lib/connectors/errors.ts';
import { AvevaHistorianConnector } from '../../lib/connectors/historian/aveva.ts';
import { PiWebApiConnector } from '../../lib/connectors/historian/pi.ts';
import type {
  HistorianConnector,
  HistorianTag,
  PageRequest,
  PageResult,
} from '../../lib/connectors/historian/types.ts';
import { type FakeHistorian, startHistorian } from '../fakes/aveva-historian.ts';
import { type FakePiWebApi, startPiWebApi } from '../fakes/pi-web-api.ts';
import { equalRun, series } from '../fakes/pi-web-api-data.ts';

// Multi-tag reads (readPages), what backfill runs on: each tag's page from its own cursor, the page covering exactly
// [from, next ?? to), one tag's failure its own. Expectations come from the truth put into the fakes.
const T0 = Date.UTC(2024, 4, 1, 6, 0, 0);
const HOUR = 3_600_000;
const S = '\\\\PISRV1\\';
const retry = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

let pi: FakePiWebApi;
let h: FakeHistorian;
const open: HistorianConnector[] = [];

/** Basic auth on a fake, short timeouts and retries; closed after the file. */
const connection = (baseUrl: string, username: string, password: string) =>
  ConnectionSchema.parse({ baseUrl, auth: { type: 'basic', username, password }, timeoutSeconds: 5, retry });
const opened = <C extends HistorianConnector>(c: C): C => {
  open.push(c);
  return c;
};
const piConnector = (maxCount: number) =>
  opened(
    new PiWebApiConnector({ name: 'PI-TEST', maxCount, connection: connection(pi.url, 'piuser', 'pi-password-1') }),
  );
const avevaConnector = (rowsPerPage: number) =>
  opened(
    new AvevaHistorianConnector({
      name: 'AVEVA-TEST',
      rowsPerPage,
      connection: connection(h.url, 'hist-reader', 'hist-pass-1'),
    }),
  );

const piTag = (name: string): HistorianTag => {
  const t = pi.tags.get(`${S}${name}`.toUpperCase())!;
  return { tag: t.path, ref: t.webId, type: t.type, units: t.units };
};
const avevaTag = (fqn: string): HistorianTag => ({ tag: fqn, ref: fqn, type: 'Analog', units: null });

/**
 * Reads every tag to its end through readPages, as backfill does: each call carries each unfinished tag's next
 * request. Returns the values per tag (in order), the calls made and each page's [from, to) for the contiguity check.
 */
async function readAll(c: HistorianConnector, tags: HistorianTag[], from: number, to: number) {
  const values = new Map<string, number[]>(tags.map((t) => [t.tag, []]));
  const covered = new Map<string, [number, number][]>(tags.map((t) => [t.tag, []]));
  let reqs: PageRequest[] = tags.map((tag) => ({ tag, from: new Date(from), to: new Date(to) }));
  let calls = 0;
  while (reqs.length) {
    const results = await c.readPages(reqs, undefined);
    calls++;
    expect(results.length).toBe(reqs.length);
    const next: PageRequest[] = [];
    for (const [i, r] of results.entries()) {
      const req = reqs[i]!;
      expect(r.tag).toBe(req.tag);
      if ('error' in r) throw r.error;
      values.get(r.tag.tag)!.push(...r.page.points.map((p) => p.value as number));
      covered.get(r.tag.tag)!.push([req.from.getTime(), (r.next ?? req.to).getTime()]);
      if (r.next) next.push({ ...req, from: r.next });
    }
    reqs = next;
  }
  return { values, covered, calls };
}

const errorOf = (r: PageResult | undefined) => (r && 'error' in r ? (r.error as UpstreamError) : undefined);

beforeAll(async () => {
  pi = await startPiWebApi();
  h = await startHistorian();
  for (let i = 0; i < 120; i++) pi.addTag(`${S}BULK${i}`, { events: series(T0, 50 + i, 60_000, (k) => i * 1000 + k) });
  // 8 ordinary values, a run of 5 at one timestamp across the 10-item page boundary, then 8 more.
  pi.addTag(`${S}STRADDLE`, {
    events: [...series(T0, 8, 1000), ...equalRun(T0 + 8000, 5, 8), ...series(T0 + 9000, 8, 1000, (k) => 13 + k)],
  });
  // A run longer than a page (25 values at one timestamp, pages of 10).
  pi.addTag(`${S}BURST`, {
    events: [...series(T0, 3, 1000), ...equalRun(T0 + 3000, 25, 3), ...series(T0 + 4000, 3, 1000, (k) => 28 + k)],
  });
  for (let i = 0; i < 6; i++)
    h.addTag(`Depot.t${i}`, {
      type: 'analog',
      generate: { start: new Date(T0).toISOString(), stepMs: 1000, count: 30 + i * 7, value: (k) => i * 1000 + k },
    });
  // Rows sharing timestamps: 12 rows at one second, then ordinary ones.
  h.addTag('Depot.burst', {
    type: 'analog',
    values: [
      ...Array.from({ length: 12 }, (_, k) => ({ ts: new Date(T0).toISOString(), value: k })),
      ...Array.from({ length: 5 }, (_, k) => ({ ts: new Date(T0 + (k + 1) * 1000).toISOString(), value: 12 + k })),
    ],
  });
});
afterEach(() => {
  pi.setMode('ok');
  pi.maxReturnedItemsPerCall = 150_000;
  pi.trace.length = 0;
  h.setMode('ok');
  h.pageSize = 1000;
  h.trace.length = 0;
});
afterAll(async () => {
  for (const c of open) c.close();
  await Promise.all([pi.close(), h.close()]);
});

const contiguous = (covered: Map<string, [number, number][]>, from: number, to: number) => {
  for (const ranges of covered.values()) {
    expect(ranges[0]![0]).toBe(from);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
    expect(ranges.at(-1)![1]).toBe(to);
  }
};

describe('PI Web API: readPages in one POST /batch', () => {
  it('reads 100 tags a call, each from its own cursor, exactly and with contiguous pages', async () => {
    const c = piConnector(40);
    expect(c.pagesPerCall).toBe(100);
    const tags = Array.from({ length: 100 }, (_, i) => piTag(`BULK${i}`));
    const { values, covered, calls } = await readAll(c, tags, T0, T0 + 4 * HOUR);
    for (let i = 0; i < 100; i++)
      expect(values.get(tags[i]!.tag)).toEqual(Array.from({ length: 50 + i }, (_, k) => i * 1000 + k));
    contiguous(covered, T0, T0 + 4 * HOUR);
    // 149 values at 40 a page (39 kept, the last timestamp carried over): 4 pages for the longest tag.
    expect(calls).toBe(4);
    expect(pi.trace.map((t) => `${t.method} ${t.path}`)).toEqual(Array(4).fill('POST /piwebapi/batch'));
  });

  it('refuses more requests than pagesPerCall', async () => {
    const tags = Array.from({ length: 101 }, (_, i) => piTag(`BULK${i % 100}`));
    await expect(
      piConnector(40).readPages(tags.map((tag) => ({ tag, from: new Date(T0), to: new Date(T0) }))),
    ).rejects.toThrow(RangeError);
  });

  it('keeps an equal-timestamp run across a page and a run longer than a page, without loss or repeat', async () => {
    const tags = [piTag('STRADDLE'), piTag('BURST')];
    const { values, covered } = await readAll(piConnector(10), tags, T0, T0 + HOUR);
    expect(values.get(tags[0]!.tag)).toEqual(Array.from({ length: 21 }, (_, k) => k));
    expect(values.get(tags[1]!.tag)).toEqual(Array.from({ length: 31 }, (_, k) => k));
    contiguous(covered, T0, T0 + HOUR);
  });

  it("keeps [from, to): a value at `to` is the next range's", async () => {
    const tag = piTag('BULK0');
    const { values } = await readAll(piConnector(1000), [tag], T0, T0 + 10 * 60_000);
    expect(values.get(tag.tag)).toEqual(Array.from({ length: 10 }, (_, k) => k));
  });

  it("a sub-request's 500 fails that tag only (retryable), the others are read", async () => {
    const tags = [piTag('BULK1'), piTag('BULK2'), piTag('BULK3')];
    pi.setMode('itemErrors', { webIds: [tags[1]!.ref] });
    const results = await piConnector(1000).readPages(
      tags.map((tag) => ({ tag, from: new Date(T0), to: new Date(T0 + HOUR) })),
    );
    const e = errorOf(results[1]);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e?.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e?.retryable).toBe(true);
    expect(e?.message).toContain('BULK2');
    expect(e?.message).toContain('The fake failed this stream.');
    expect(results.map((r) => ('page' in r ? r.page.points.length : 'error'))).toEqual([51, 'error', 53]);
  });

  it("an unknown WebId is that tag's 404, not retryable", async () => {
    const bad: HistorianTag = { tag: `${S}GONE`, ref: 'P1DPnotthere', type: 'Float32', units: null };
    const results = await piConnector(1000).readPages([
      { tag: bad, from: new Date(T0), to: new Date(T0 + HOUR) },
      { tag: piTag('BULK0'), from: new Date(T0), to: new Date(T0 + HOUR) },
    ]);
    const e = errorOf(results[0]);
    expect(e?.code).toBe('UPSTREAM_BAD_RESPONSE');
    expect(e?.retryable).toBe(false);
    expect(e?.message).toContain('404');
    expect('page' in results[1]! && results[1].page.points.length).toBe(50);
  });

  it('a maxCount the server refuses inside the batch is read again alone, lowered, and exact', async () => {
    pi.maxReturnedItemsPerCall = 25;
    const c = piConnector(40);
    const tag = piTag('BULK20');
    const { values } = await readAll(c, [tag], T0, T0 + 4 * HOUR);
    expect(values.get(tag.tag)).toEqual(Array.from({ length: 70 }, (_, k) => 20_000 + k));
    expect(c.maxCount).toBeLessThanOrEqual(25);
    expect(pi.trace.some((t) => t.method === 'GET' && t.path.endsWith('/recorded'))).toBe(true);
  });

  it('sends X-Requested-With (the fake refuses a POST without it) and retries a 503 of the whole batch', async () => {
    pi.setMode('status', { status: 503, times: 1 });
    const tag = piTag('BULK5');
    const { values } = await readAll(piConnector(1000), [tag], T0, T0 + HOUR);
    expect(values.get(tag.tag)?.length).toBe(55);
    expect(pi.trace.map((t) => t.answered)).toEqual([503, 207]);
  });

  it('a batch that keeps failing (500 after the retries) fails the whole call', async () => {
    const reqs = [{ tag: piTag('BULK0'), from: new Date(T0), to: new Date(T0 + HOUR) }];
    pi.setMode('500');
    const e = await piConnector(1000)
      .readPages(reqs)
      .then(
        () => undefined,
        (err: unknown) => err as UpstreamError,
      );
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e?.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(pi.trace.length).toBe(3);
  });
});

describe('AVEVA Historian: readPages, four tags at a time', () => {
  it('reads each tag from its own cursor, pages cut between timestamps, over the server pages', async () => {
    h.pageSize = 7;
    const c = avevaConnector(10);
    expect(c.pagesPerCall).toBe(20);
    const tags = Array.from({ length: 6 }, (_, i) => avevaTag(`Depot.t${i}`));
    const { values, covered, calls } = await readAll(c, tags, T0, T0 + HOUR);
    for (let i = 0; i < 6; i++)
      expect(values.get(tags[i]!.tag)).toEqual(Array.from({ length: 30 + i * 7 }, (_, k) => i * 1000 + k));
    contiguous(covered, T0, T0 + HOUR);
    // 65 rows at 10 a page: 7 pages for the longest tag.
    expect(calls).toBe(7);
  });

  it('reads a run of one timestamp longer than a page to its end, then cuts', async () => {
    const tag = avevaTag('Depot.burst');
    const { values, covered } = await readAll(avevaConnector(5), [tag], T0, T0 + HOUR);
    expect(values.get(tag.tag)).toEqual(Array.from({ length: 17 }, (_, k) => k));
    // The first page holds the whole run of 12 (it cannot be split), then pages of 5 cut between seconds.
    expect(covered.get(tag.tag)?.[0]).toEqual([T0, T0 + 1000]);
  });

  it("an unknown FQN is that tag's 404, the other tags are read", async () => {
    const results = await avevaConnector(100).readPages([
      { tag: avevaTag('Depot.nope'), from: new Date(T0), to: new Date(T0 + HOUR) },
      { tag: avevaTag('Depot.t0'), from: new Date(T0), to: new Date(T0 + HOUR) },
    ]);
    const e = errorOf(results[0]);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e?.message).toContain('404');
    expect('page' in results[1]! && results[1].page.points.length).toBe(30);
  });
});
