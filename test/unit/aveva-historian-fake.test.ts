import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  OPC_QUALITY_SWEEP,
  QUALITY_SWEEP,
  STRING_SWEEP,
  qualitySweepValues,
  startHistorian,
  type FakeHistorian,
} from '../fakes/aveva-historian.ts';

// The fake checked against the protocol (reference/protocols.md §2) with raw fetch, so a connector test built on it
// later stands on a server that behaves like the documented one.
let h: FakeHistorian;
const basic = () => `Basic ${Buffer.from(`${h.basic?.user}:${h.basic?.password}`).toString('base64')}`;

interface Page {
  '@odata.context': string;
  '@odata.nextLink'?: string;
  value: Record<string, unknown>[];
}

async function get(pathAndQuery: string, auth: string | null = basic()) {
  const url = pathAndQuery.startsWith('http') ? pathAndQuery : `${h.url}${pathAndQuery}`;
  const res = await fetch(url, { headers: auth ? { authorization: auth } : {} });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Page & { error?: unknown } };
}

/** Follows @odata.nextLink to the end; returns the page sizes and all rows. */
async function getAll(pathAndQuery: string, maxPages = 20) {
  const sizes: number[] = [];
  const rows: Record<string, unknown>[] = [];
  let next: string | undefined = pathAndQuery;
  while (next) {
    if (sizes.length === maxPages) throw new Error(`still a next link after ${maxPages} pages`);
    const { status, body } = await get(next);
    expect(status).toBe(200);
    sizes.push(body.value.length);
    rows.push(...body.value);
    next = body['@odata.nextLink'];
  }
  return { sizes, rows };
}

const pv = (filter: string, extra = '') => `/Historian/v2/ProcessValues?$filter=${encodeURIComponent(filter)}${extra}`;
const LEVEL = "FQN eq 'Baytown.tank_level'";

beforeAll(async () => {
  h = await startHistorian();
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
  // 2500 values, one a second from 08:00: value i at 08:00 + i s.
  h.addTag('Depot.flow', {
    type: 'analog',
    unit: 'm3/h',
    generate: { start: '2024-05-01T08:00:00Z', stepMs: 1000, count: 2500 },
  });
  h.addTag('Depot.pump_on', { type: 'discrete', values: [{ ts: '2024-05-01T06:00:00Z', value: 1 }] });
  h.addTag('Depot.batch_id', {
    type: 'string',
    values: STRING_SWEEP.map((value, i) => ({ ts: `2024-05-01T06:0${i}:00Z`, value })),
  });
  h.addTag('Depot.quality', { type: 'analog', values: qualitySweepValues('2024-05-01T06:00:00Z', 60_000) });
});
afterAll(() => h.close());
afterEach(() => {
  h.setMode('ok');
  h.pageSize = 1000;
  h.unknownTag = '404';
});

describe('the fake AVEVA Historian: documented shapes', () => {
  it('looks a tag up by FQN in /Tags, and answers an unknown FQN with an empty value list', async () => {
    const { status, body } = await get(`/Historian/v2/Tags?$filter=${encodeURIComponent(LEVEL)}`);
    expect(status).toBe(200);
    expect(body['@odata.context']).toBe(`${h.url}/Historian/v2/$metadata#Tags`);
    expect(body.value).toEqual([
      {
        FQN: 'Baytown.tank_level',
        Source: 'Baytown',
        TagName: 'tank_level',
        TagType: 'Analog',
        Description: '',
        EngUnit: 'm',
      },
    ]);
    const none = await get(`/Historian/v2/Tags?$filter=${encodeURIComponent("FQN eq 'Baytown.nope'")}`);
    expect([none.status, none.body.value]).toEqual([200, []]);
    const depot = await get(`/Historian/v2/Tags?$filter=${encodeURIComponent("startswith(FQN,'Depot.')")}`);
    expect(depot.body.value.map((t) => [t.FQN, t.TagType])).toEqual([
      ['Depot.batch_id', 'String'],
      ['Depot.flow', 'Analog'],
      ['Depot.pump_on', 'Discrete'],
      ['Depot.quality', 'Analog'],
    ]);
  });

  it(`answers ProcessValues as OData JSON with UTC 7-digit DateTime, OpcQuality, Quality and \
QualityDetail`, async () => {
    const { status, headers, body } = await get(pv(LEVEL));
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^application\/json/);
    expect(body['@odata.context']).toBe(`${h.url}/Historian/v2/$metadata#ProcessValues`);
    expect(body['@odata.nextLink']).toBeUndefined();
    const row = (DateTime: string, Value: number | null, Text: string | null, q: number[]) => ({
      FQN: 'Baytown.tank_level',
      DateTime,
      OpcQuality: q[0],
      Quality: q[1],
      QualityDetail: q[2],
      Value,
      Text,
      Unit: 'm',
    });
    expect(body.value).toEqual([
      row('2024-05-01T06:00:00.0000000Z', 41.5, '41.5', [192, 133, 252]),
      row('2024-05-01T06:00:02.0128451Z', 41.7, '41.7', [192, 0, 192]),
      row('2024-05-01T06:30:00.0000000Z', null, null, [24, 1, 24]),
      row('2024-05-01T07:00:00.0000000Z', 42.25, '42.25', [216, 0, 192]),
    ]);
    h.qualityColumns = false; // the documented sample's columns only
    const doc = await get(pv(LEVEL));
    h.qualityColumns = true;
    expect(Object.keys(doc.body.value[0] ?? {})).toEqual(['FQN', 'DateTime', 'OpcQuality', 'Value', 'Text', 'Unit']);
  });

  it('bounds DateTime: ge and le inclusive, gt and lt exclusive, to the 100 ns', async () => {
    const times = async (f: string) => (await get(pv(`${LEVEL} and ${f}`))).body.value.map((r) => r.DateTime);
    expect(await times('DateTime ge 2024-05-01T06:00:00Z and DateTime lt 2024-05-01T07:00:00Z')).toEqual([
      '2024-05-01T06:00:00.0000000Z',
      '2024-05-01T06:00:02.0128451Z',
      '2024-05-01T06:30:00.0000000Z',
    ]);
    expect(await times('DateTime gt 2024-05-01T06:00:00Z and DateTime le 2024-05-01T07:00:00Z')).toEqual([
      '2024-05-01T06:00:02.0128451Z',
      '2024-05-01T06:30:00.0000000Z',
      '2024-05-01T07:00:00.0000000Z',
    ]);
    // One tick either side of the sub-millisecond row.
    expect(
      await times('DateTime ge 2024-05-01T06:00:02.0128451Z and DateTime lt 2024-05-01T06:00:02.0128452Z'),
    ).toEqual(['2024-05-01T06:00:02.0128451Z']);
    expect(await times('DateTime gt 2024-05-01T06:00:02.0128451Z and DateTime lt 2024-05-01T06:30:00Z')).toEqual([]);
  });

  it(`serves several tags (FQN eq .. or FQN eq ..), discrete Text messages, string tags as Text with \
Value null`, async () => {
    const { body } = await get(pv("(FQN eq 'Depot.pump_on' or FQN eq 'Depot.batch_id')"));
    expect(body.value[0]).toMatchObject({ FQN: 'Depot.pump_on', Value: 1, Text: 'On' });
    const strings = body.value.slice(1);
    expect(strings.map((r) => r.Text)).toEqual([...STRING_SWEEP]);
    expect(strings.every((r) => r.FQN === 'Depot.batch_id' && r.Value === null)).toBe(true);
  });

  it('serves OpcQuality across good, uncertain and bad, and Quality 0/1/16/133, exactly as stored', async () => {
    const { body } = await get(pv("FQN eq 'Depot.quality'", '&$select=OpcQuality,Quality,QualityDetail,Value'));
    expect(body.value.map((r) => r.OpcQuality)).toEqual([...OPC_QUALITY_SWEEP]);
    expect(new Set(body.value.map((r) => r.Quality))).toEqual(new Set(QUALITY_SWEEP));
    expect(body.value[2]).toEqual({ OpcQuality: 202, Quality: 1, QualityDetail: 24, Value: null });
    expect(body.value[0]).toEqual({ OpcQuality: 192, Quality: 133, QualityDetail: 252, Value: 0 });
  });
});

describe('the fake AVEVA Historian: paging', () => {
  const FLOW = "FQN eq 'Depot.flow' and DateTime ge 2024-05-01T08:00:00Z and DateTime lt 2024-05-01T09:00:00Z";

  it('pages by the server page size with an opaque @odata.nextLink, to the end with exact counts', async () => {
    const { sizes, rows } = await getAll(pv(FLOW));
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(rows.map((r) => r.Value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect(rows[2499]?.DateTime).toBe('2024-05-01T08:41:39.0000000Z'); // 08:00 + 2499 s
  });

  it('keeps $top across pages, and $skip', async () => {
    h.pageSize = 400;
    const top = await getAll(pv(FLOW, '&$top=1000'));
    expect(top.sizes).toEqual([400, 400, 200]);
    expect(top.rows.map((r) => r.Value)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const skip = await getAll(pv(FLOW, '&$skip=2300'));
    expect(skip.rows.map((r) => r.Value)).toEqual(Array.from({ length: 200 }, (_, i) => 2300 + i));
    const both = await getAll(pv(FLOW, '&$skip=1000&$top=700'));
    expect(both.rows.map((r) => r.Value)).toEqual(Array.from({ length: 700 }, (_, i) => 1000 + i));
  });
});

describe('the fake AVEVA Historian: errors and auth', () => {
  it(`answers a bad $filter, a quoted DateTime, a bad $top and a bad $skiptoken with 400 and an OData \
error`, async () => {
    for (const path of [
      pv("FQN eq 'Baytown.tank_level' and Value gt 3"),
      pv(`${LEVEL} and DateTime ge '2024-05-01T06:00:00Z'`),
      pv(`${LEVEL} and DateTime ge datetimeoffset'2024-05-01T06:00:00Z'`),
      pv(LEVEL, '&$top=-1'),
      '/Historian/v2/ProcessValues?$skiptoken=not-a-token',
    ]) {
      const { status, body } = await get(path);
      expect([path, status]).toEqual([path, 400]);
      expect(body.error).toMatchObject({ code: 'BadRequest', message: expect.any(String) });
    }
  });

  it('answers an unknown FQN with 404 (as documented), or an empty list when so configured', async () => {
    const { status, body } = await get(pv("FQN eq 'Baytown.nope'"));
    expect(status).toBe(404);
    expect(body.error).toEqual({ code: 'NotFound', message: "FQN doesn't exist: Baytown.nope" });
    h.unknownTag = 'empty';
    const empty = await get(pv("FQN eq 'Baytown.nope'"));
    expect([empty.status, empty.body.value]).toEqual([200, []]);
  });

  it('accepts Basic and Bearer, and refuses others with 401 and WWW-Authenticate', async () => {
    expect((await get(pv(LEVEL), 'Bearer hist-token-1')).status).toBe(200);
    for (const auth of [null, 'Bearer wrong', `Basic ${Buffer.from('hist-reader:wrong').toString('base64')}`]) {
      const { status, headers, body } = await get(pv(LEVEL), auth);
      expect([auth, status]).toEqual([auth, 401]);
      expect(headers.get('www-authenticate')).toBe('Basic realm="Historian", Bearer');
      expect(body.error).toMatchObject({ code: 'Unauthorized' });
    }
    expect(h.trace.at(-1)).toMatchObject({ answered: 401, auth: undefined });
  });
});

describe('the fake AVEVA Historian: faults', () => {
  it('answers a 503 burst of n, then normally', async () => {
    h.setMode('status', { status: 503, times: 2, retryAfter: '1' });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(pv(LEVEL))).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect(h.trace.slice(-3).map((c) => c.answered)).toEqual([503, 503, 200]);
  });

  it('slows each page by delayMs', async () => {
    h.setMode('slow', { delayMs: 300 });
    const t0 = performance.now();
    expect((await get(pv(LEVEL))).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('repeatPage: a followed next link answers the same page and the same link again (a lying server)', async () => {
    h.setMode('repeatPage');
    const first = await get(pv("FQN eq 'Depot.flow'"));
    const link = first.body['@odata.nextLink']!;
    const second = await get(link);
    const third = await get(second.body['@odata.nextLink']!);
    expect(second.body['@odata.nextLink']).toBe(link);
    expect(third.body['@odata.nextLink']).toBe(link);
    expect(third.body.value).toEqual(second.body.value);
    expect(second.body.value[0]?.Value).toBe(1000);
  });

  it('emptyPage: a followed link answers an empty page with a next link that continues exactly', async () => {
    h.setMode('emptyPage', { times: 1 });
    const { sizes, rows } = await getAll(pv("FQN eq 'Depot.flow'"));
    expect(sizes).toEqual([1000, 0, 1000, 500]);
    expect(rows.map((r) => r.Value)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
  });

  it('malformed: a 200 whose body is cut JSON', async () => {
    h.setMode('malformed');
    const res = await fetch(`${h.url}${pv(LEVEL)}`, { headers: { authorization: basic() } });
    expect(res.status).toBe(200);
    await expect(res.json()).rejects.toThrow(SyntaxError);
  });
});
