import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakePiWebApi, generatedRecorded, startPiWebApi } from '../fakes/pi-web-api.ts';
import { type PiTag, recorded, series } from '../fakes/pi-web-api-data.ts';

// The PI fake's generated tags (TagSpec.generate, for the backfill bench) must read exactly as the same events
// stored: every boundary, direction and maxCount, against recorded() over the stored array.
const T0 = Date.UTC(2024, 4, 1, 6, 0, 0);
const STEP = 1000;
const N = 20;
const value = (i: number) => i * 0.5;
const g = { start: T0, stepMs: STEP, count: N, value };
const stored = { events: series(T0, N, STEP, value) } as PiTag;

describe('a generated tag', () => {
  // Before, at, between, on and after the events, both ends.
  const points = [-5000, -1000, -1, 0, 1, 500, 999, 1000, 7000, 7500, 18_999, 19_000, 19_001, 25_000].map(
    (d) => T0 + d,
  );

  it('answers every range as its stored events do', () => {
    let compared = 0;
    for (const a of points)
      for (const b of points)
        for (const boundary of ['Inside', 'Outside'] as const)
          for (const maxCount of [1, 3, 7, 1000]) {
            expect(
              generatedRecorded(g, a, b, boundary, maxCount),
              `${a - T0}..${b - T0} ${boundary} ${maxCount}`,
            ).toEqual(recorded(stored, a, b, boundary, maxCount));
            compared++;
          }
    expect(compared).toBe(points.length ** 2 * 8);
  });

  it('defaults its values to the index, as series() does', () => {
    expect(generatedRecorded({ start: T0, stepMs: 10, count: 3 }, T0, T0 + 100, 'Inside', 10)).toEqual(
      series(T0, 3, 10),
    );
  });
});

describe('a generated tag over HTTP', () => {
  let pi: FakePiWebApi;
  const BASIC = `Basic ${Buffer.from('piuser:pi-password-1').toString('base64')}`;
  const GEN = '\\\\PISRV1\\GEN.PV';
  const STORED = '\\\\PISRV1\\STORED.PV';

  beforeAll(async () => {
    pi = await startPiWebApi();
    pi.addTag(GEN, { units: 'm3/h', generate: g });
    pi.addTag(STORED, { units: 'm3/h', events: series(T0, N, STEP, value) });
  });
  afterAll(() => pi.close());

  // The same text, not only equal objects: the fast encoding of generated items must keep keys and their order.
  const text = async (path: string) => (await fetch(`${pi.url}/${path}`, { headers: { authorization: BASIC } })).text();
  const FIELDS = [
    undefined,
    'Items.Timestamp;Items.Value;Items.Good;Items.Questionable;Items.Substituted',
    'Items.Value',
    'items.timestamp;UnitsAbbreviation',
    'Items',
    'Links',
    'Items.Value.Name;Items.Annotated',
  ];

  it('answers streams/recorded with the same text as a stored tag, whatever the fields selected', async () => {
    const range = `startTime=${new Date(T0 + 1500).toISOString()}&endTime=${new Date(T0 + 9000).toISOString()}`;
    for (const fields of FIELDS) {
      const q = `${range}&maxCount=5${fields ? `&selectedFields=${fields}` : ''}`;
      const gen = await text(`streams/${pi.tags.get(GEN)!.webId}/recorded?${q}`);
      expect(gen, fields).toBe(await text(`streams/${pi.tags.get(STORED)!.webId}/recorded?${q}`));
    }
    const items = JSON.parse(await text(`streams/${pi.tags.get(GEN)!.webId}/recorded?${range}&maxCount=5`)).Items;
    expect(items.map((i: { Value: number }) => i.Value)).toEqual([1, 1.5, 2, 2.5, 3]);
  });

  it('answers a batch as for stored events, non-numeric values included', async () => {
    pi.addTag(`${GEN}.ODD`, { generate: { ...g, value: (i) => (i % 3 ? i : { Errors: ['Point not found'] }) } });
    pi.addTag(`${STORED}.ODD`, {
      events: series(T0, N, STEP, (i) => (i % 3 ? i : { Errors: ['Point not found'] })),
    });
    const range =
      `startTime=${new Date(T0 + 1500).toISOString()}&endTime=${new Date(T0 + 12_000).toISOString()}` +
      '&boundaryType=Outside&maxCount=7';
    const batch = async (tag: string) => {
      const resource = (f?: string) =>
        `${pi.url}/streams/${pi.tags.get(tag.toUpperCase())!.webId}/recorded?${range}` +
        (f ? `&selectedFields=${f}` : '');
      const res = await fetch(`${pi.url}/batch`, {
        method: 'POST',
        headers: { authorization: BASIC, 'x-requested-with': 'XMLHttpRequest', 'content-type': 'application/json' },
        body: JSON.stringify(
          Object.fromEntries(FIELDS.map((f, k) => [String(k), { Method: 'GET', Resource: resource(f) }])),
        ),
      });
      return res.text();
    };
    const gen = await batch(`${GEN}.ODD`);
    expect(gen).toBe(await batch(`${STORED}.ODD`));
    expect(gen).toContain('Point not found');
  });

  it('stores its events once events are added to it', async () => {
    pi.addEvents(GEN, [{ ts: T0 + 500, value: 99 }]);
    const tag = pi.tags.get(GEN)!;
    expect(tag.events).toHaveLength(N + 1);
    expect(tag.events[1]).toEqual({ ts: T0 + 500, value: 99 });
    const q = `startTime=${new Date(T0).toISOString()}&endTime=${new Date(T0 + 1000).toISOString()}`;
    expect(JSON.parse(await text(`streams/${tag.webId}/recorded?${q}&selectedFields=Items.Value`)).Items).toEqual([
      { Value: 0 },
      { Value: 99 },
      { Value: 0.5 },
    ]);
  });
});
