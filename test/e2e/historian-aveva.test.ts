import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionSchema } from '../../lib/config/connection.ts';
import { UpstreamError } from '../../lib/connectors/errors.ts';
import { AvevaHistorianConnector } from '../../lib/connectors/historian/aveva.ts';
import type { HistorianTag, RecordedPage } from '../../lib/connectors/historian/types.ts';
import { OPC_QUALITY_SWEEP, STRING_SWEEP, startHistorian, type FakeHistorian } from '../fakes/aveva-historian.ts';

// The AVEVA Historian REST v2 connector against the in-process fake (protocols.md §2). No database needed.
let h: FakeHistorian;
let hist: AvevaHistorianConnector;
const T8 = Date.parse('2024-05-01T08:00:00Z');
const at = (s: number) => new Date(T8 + s * 1000);
const QUOTED = "Baytown.o'neil_level";

const connector = (opts: { pageSize?: number; password?: string } = {}) =>
  new AvevaHistorianConnector({
    name: 'AVEVA-TEST',
    pageSize: opts.pageSize,
    connection: ConnectionSchema.parse({
      baseUrl: h.url,
      auth: { type: 'basic', username: 'hist-reader', password: opts.password ?? 'hist-pass-1' },
      timeoutSeconds: 5,
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
    }),
  });

async function collect(pages: AsyncIterable<RecordedPage>) {
  const out: RecordedPage & { pages: number } = { points: [], refused: [], pages: 0 };
  for await (const p of pages) {
    out.pages++;
    out.points.push(...p.points);
    out.refused.push(...p.refused);
  }
  return out;
}

const tag = (fqn: string, type = 'Analog'): HistorianTag => ({ tag: fqn, ref: fqn, type, units: null });
const flow = (from = at(0), to = at(3600)) => collect(hist.recorded(tag('Depot.flow'), from, to));
const pvCalls = () => h.trace.filter((c) => c.path.endsWith('/ProcessValues'));
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the read to fail');
    },
    (e: unknown) => e as UpstreamError,
  );

beforeAll(async () => {
  h = await startHistorian();
  // Value i at 08:00 + i s (the fake's generator), 2,500 of them.
  h.addTag('Depot.flow', {
    type: 'analog',
    unit: 'm3/h',
    generate: { start: '2024-05-01T08:00:00Z', stepMs: 1000, count: 2500 },
  });
  h.addTag('Baytown.tank_level', {
    type: 'analog',
    unit: 'm',
    values: [
      { ts: '2024-05-01T06:00:00Z', value: 41.5, quality: 133, qualityDetail: 252 },
      { ts: '2024-05-01T06:00:02.0128451Z', value: 41.7 },
      { ts: '2024-05-01T06:30:00Z', value: null, opcQuality: 24, quality: 1, qualityDetail: 24 },
      { ts: '2024-05-01T07:00:00Z', value: 42.25, opcQuality: 216 },
    ],
  });
  h.addTag('Depot.pump_on', { type: 'discrete', values: [{ ts: '2024-05-01T06:00:00Z', value: 1 }] });
  h.addTag('Depot.batch_id', {
    type: 'string',
    values: STRING_SWEEP.map((value, i) => ({ ts: `2024-05-01T06:0${i}:00Z`, value })),
  });
  // One good Quality (0) on every row, so only OpcQuality decides.
  h.addTag('Depot.opc', {
    type: 'analog',
    values: OPC_QUALITY_SWEEP.map((opcQuality, i) => ({ ts: at(i).toISOString(), value: i, opcQuality, quality: 0 })),
  });
  // OpcQuality 192 on every row, so only Quality decides.
  h.addTag('Depot.q', {
    type: 'analog',
    values: [0, 1, 16, 133].map((quality, i) => ({ ts: at(i).toISOString(), value: i, opcQuality: 192, quality })),
  });
  h.addTag(QUOTED, { type: 'analog', unit: 'm', values: [{ ts: '2024-05-01T08:00:00Z', value: 3.5 }] });
  for (let i = 0; i < 25; i++) h.addTag(`Bulk.t${i}`, { type: 'analog', unit: 'bar', values: [] });
  hist = connector();
});
afterAll(async () => {
  hist.close();
  await h.close();
});
afterEach(() => {
  h.setMode('ok');
  h.pageSize = 1000;
  h.trace.length = 0;
});

describe('AVEVA Historian connector: tags', () => {
  it('resolves FQNs in /Tags (several per call, chunked), type and unit; unknown ones fail with a reason', async () => {
    const bulk = Array.from({ length: 25 }, (_, i) => `Bulk.t${i}`);
    const { resolved, failed } = await hist.resolveTags([
      'Depot.flow',
      'Depot.pump_on',
      'Depot.batch_id',
      'Baytown.nope',
      QUOTED,
      ...bulk,
    ]);
    expect(resolved.slice(0, 4)).toEqual([
      { tag: 'Depot.flow', ref: 'Depot.flow', type: 'Analog', units: 'm3/h' },
      { tag: 'Depot.pump_on', ref: 'Depot.pump_on', type: 'Discrete', units: null },
      { tag: 'Depot.batch_id', ref: 'Depot.batch_id', type: 'String', units: null },
      { tag: QUOTED, ref: QUOTED, type: 'Analog', units: 'm' },
    ]);
    expect(resolved.length).toBe(29);
    expect(failed).toEqual([{ tag: 'Baytown.nope', reason: expect.stringContaining("'Baytown.nope'") }]);
    // 30 FQNs at 20 a call: two lookups, not thirty.
    expect(h.trace.filter((c) => c.path.endsWith('/Tags')).length).toBe(2);
  });
});

describe('AVEVA Historian connector: recorded values', () => {
  it('reads 2,500 values exactly over the server pages, oldest first', async () => {
    const r = await flow();
    expect(r.points.map((p) => p.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect(r.points.map((p) => p.ts.getTime())).toEqual(Array.from({ length: 2500 }, (_, i) => T8 + i * 1000));
    expect(r.points.every((p) => p.quality === 100)).toBe(true);
    expect([r.pages, r.refused.length, pvCalls().length]).toEqual([3, 0, 3]);
    expect(pvCalls()[0]?.query).toContain('RetrievalMode=Delta');
  });

  it('with a page size, asks $top windows by $skip, and still follows the next links inside a window', async () => {
    const small = connector({ pageSize: 700 });
    h.pageSize = 300; // each 700-row window comes as 300 + 300 + 100
    try {
      const r = await collect(small.recorded(tag('Depot.flow'), at(0), at(3600)));
      expect(r.points.map((p) => p.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
      expect(pvCalls().filter((c) => c.query.includes('%24top=700') || c.query.includes('$top=700')).length).toBe(4);
    } finally {
      small.close();
    }
  });

  it(`keeps [from, to): the row at \`from\` in, the row at \`to\` out; 7-digit DateTime cut to \
the millisecond`, async () => {
    const r = await flow(at(10), at(20));
    expect(r.points.map((p) => p.value)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const lvl = await collect(
      hist.recorded(tag('Baytown.tank_level'), new Date('2024-05-01T06:00:00Z'), new Date('2024-05-01T07:00:00Z')),
    );
    // Quality 133 at `from` is the delta query's initial value (the value in effect then), not a recorded one.
    expect(lvl.points.map((p) => [p.ts.toISOString(), p.value, p.quality])).toEqual([
      ['2024-05-01T06:00:02.012Z', 41.7, 100], // .0128451 truncated, not rounded to .013
    ]);
    const before = await collect(
      hist.recorded(tag('Baytown.tank_level'), new Date('2024-05-01T05:00:00Z'), new Date('2024-05-01T06:00:01Z')),
    );
    // Read from earlier, the same row is no initial value of this query: a value (Quality 133 maps to good).
    expect(before.points.map((p) => [p.ts.toISOString(), p.value, p.quality])).toEqual([
      ['2024-05-01T06:00:00.000Z', 41.5, 100],
    ]);
    // The NULL row with bad quality is a gap marker: refused and counted, never a zero.
    expect(lvl.refused.map((p) => [p.ts.toISOString(), p.reason])).toEqual([['2024-05-01T06:30:00.000Z', 'no value']]);
  });

  it('maps OpcQuality by range (192–219 good, 64–91 uncertain, 0–35 bad) and Quality 0/1/16/133', async () => {
    const opc = await collect(hist.recorded(tag('Depot.opc'), at(0), at(60)));
    // OPC_QUALITY_SWEEP = 192 193 202 216 219 | 64 68 91 | 0 4 24 35
    expect(opc.points.map((p) => p.quality)).toEqual([100, 100, 100, 100, 100, 50, 50, 50, 0, 0, 0, 0]);
    const q = await collect(hist.recorded(tag('Depot.q'), at(0), at(60)));
    // 0 good, 1 bad, 16 doubtful, 133 initial value (good)
    expect(q.points.map((p) => [p.value, p.quality])).toEqual([
      [0, 100],
      [1, 0],
      [2, 50],
      [3, 100],
    ]);
  });

  it('refuses string tag values with a reason (counted), and reads a discrete row as its 0/1', async () => {
    const s = await collect(
      hist.recorded(
        tag('Depot.batch_id', 'String'),
        new Date('2024-05-01T06:00:00Z'),
        new Date('2024-05-01T07:00:00Z'),
      ),
    );
    expect(s.points).toEqual([]);
    expect(s.refused.map((p) => p.raw)).toEqual([...STRING_SWEEP]);
    expect(s.refused.every((p) => /string/.test(p.reason))).toBe(true);
    const d = await collect(
      hist.recorded(
        tag('Depot.pump_on', 'Discrete'),
        new Date('2024-05-01T06:00:00Z'),
        new Date('2024-05-01T07:00:00Z'),
      ),
    );
    expect(d.points.map((p) => p.value)).toEqual([1]); // Text says 'On'; the value stays the number
  });

  it("reads an FQN holding a quote (OData '' doubling)", async () => {
    const r = await collect(hist.recorded(tag(QUOTED), at(0), at(1)));
    expect(r.points.map((p) => p.value)).toEqual([3.5]);
  });
});

describe('AVEVA Historian connector: faults and errors', () => {
  it('a repeated page and link ends the read with a typed error, not a loop', async () => {
    h.setMode('repeatPage');
    const e = await failure(flow());
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('UPSTREAM_BAD_RESPONSE');
    expect(e.message).toMatch(/repeats/);
    expect(pvCalls().length).toBeLessThanOrEqual(3);
  });

  it('an empty page that promises more ends the read with a typed error', async () => {
    h.setMode('emptyPage', { times: 1 });
    const e = await failure(flow());
    expect([e.code, e.message]).toEqual(['UPSTREAM_BAD_RESPONSE', expect.stringMatching(/empty/)]);
  });

  it('a 503 burst is retried and the read stays exact', async () => {
    h.setMode('status', { status: 503, times: 2 });
    const r = await flow();
    expect(r.points.map((p) => p.value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect(pvCalls().map((c) => c.answered)).toEqual([503, 503, 200, 200, 200]);
  });

  it('401 is a typed error and is not retried', async () => {
    const wrong = connector({ password: 'wrong' });
    try {
      const e = await failure(collect(wrong.recorded(tag('Depot.flow'), at(0), at(10))));
      expect([e.code, e.upstream.status]).toEqual(['UPSTREAM_BAD_RESPONSE', 401]);
      expect(pvCalls().filter((c) => c.answered === 401).length).toBe(1);
    } finally {
      wrong.close();
    }
  });

  it('404 for an unknown FQN is a typed error naming the tag', async () => {
    const e = await failure(collect(hist.recorded(tag('Baytown.nope'), at(0), at(10))));
    expect([e.code, e.upstream.status, e.retryable]).toEqual(['UPSTREAM_BAD_RESPONSE', 404, false]);
    expect(e.message).toContain('Baytown.nope');
  });

  it('a malformed body is a typed error', async () => {
    h.setMode('malformed');
    const e = await failure(flow());
    expect([e.code, e.message]).toEqual(['UPSTREAM_BAD_RESPONSE', expect.stringMatching(/not JSON/)]);
  });
});
