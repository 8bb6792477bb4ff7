import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakePiWebApi, startPiWebApi } from '../fakes/pi-web-api.ts';
import { equalRun, series, systemState } from '../fakes/pi-web-api-data.ts';

// The fake speaks PI Web API (reference/protocols.md §1); these tests talk raw HTTP to it so its wire shapes are
// checked against the protocol notes, with expectations written out by hand from the truth below.
const T0 = Date.UTC(2024, 4, 1, 6, 0, 0); // 2024-05-01T06:00:00Z
const FIC = '\\\\PISRV1\\FIC101.PV';
const MODE = '\\\\PISRV1\\PUMP1.MODE';
const RUN = '\\\\PISRV1\\BURST';
const BASIC = `Basic ${Buffer.from('piuser:pi-password-1').toString('base64')}`;

let pi: FakePiWebApi;
const get = (path: string, auth = BASIC) => fetch(`${pi.url}/${path}`, { headers: { authorization: auth } });
const json = async (path: string) => {
  const r = await get(path);
  return { status: r.status, body: (await r.json()) as Record<string, any> };
};
const enc = encodeURIComponent;
const recordedOf = (webId: string, q: string) => json(`streams/${webId}/recorded?${q}`);

beforeAll(async () => {
  pi = await startPiWebApi({ maxReturnedItemsPerCall: 50, now: () => T0 + 3_600_000 });
  // 10 values a minute apart: 0, 1.5, 3, ... and one bad event (a system state) at 06:00:30.
  pi.addTag(FIC, { units: 'm3/h', events: series(T0, 10, 60_000, (i) => i * 1.5) });
  pi.addEvents(FIC, [{ ts: T0 + 30_000, value: systemState('I/O Timeout') }]);
  pi.addTag(MODE, {
    type: 'Digital',
    digitalSet: { name: 'PumpModes', states: ['Off', 'Manual', 'Auto'] },
    events: [
      { ts: T0, value: 'Auto' },
      { ts: T0 + 1000, value: systemState('Pt Created') },
      { ts: T0 + 2000, value: { Errors: ['Point not found'] } },
      { ts: T0 + 3000, value: 'Manual', questionable: true, substituted: true, annotated: true },
    ],
  });
  // 8 events at one timestamp between two ordinary ones: a run longer than a 5-item page.
  pi.addTag(RUN, { events: [{ ts: T0 - 1000, value: -1 }, ...equalRun(T0, 8), { ts: T0 + 1000, value: 99 }] });
});
afterAll(() => pi.close());

const fic = () => pi.tags.get(FIC.toUpperCase())!.webId;

describe('fake PI Web API: points', () => {
  it('resolves a path to its point and 404s an unknown one with Errors', async () => {
    const ok = await json(`points?path=${enc(FIC)}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ Name: 'FIC101.PV', Path: FIC, PointType: 'Float32', EngineeringUnits: 'm3/h' });
    expect(ok.body.WebId).toBe(fic());
    const sel = await json(`points?path=${enc(FIC)}&selectedFields=WebId;PointType`);
    expect(sel.body).toEqual({ WebId: fic(), PointType: 'Float32' });
    const missing = await json(`points?path=${enc('\\\\PISRV1\\NOPE')}`);
    expect(missing.status).toBe(404);
    expect(missing.body.Errors[0]).toContain('NOPE');
  });

  it('answers points/multiple 200 when all exist and 207 with a per-item Exception when some do not', async () => {
    const all = await json(`points/multiple?path=${enc(FIC)}&path=${enc(MODE)}`);
    expect(all.status).toBe(200);
    expect(all.body.Items.map((i: any) => i.Object.DigitalSetName)).toEqual(['', 'PumpModes']);
    const partial = await json(`points/multiple?path=${enc(FIC)}&path=${enc('\\\\PISRV1\\NOPE')}`);
    expect(partial.status).toBe(207);
    expect(partial.body.Items[0]).toMatchObject({ Identifier: FIC, IdentifierType: 'Path', Exception: null });
    expect(partial.body.Items[1].Object).toBeNull();
    expect(partial.body.Items[1].Exception.Errors).toHaveLength(1);
  });
});

describe('fake PI Web API: recorded', () => {
  it('returns the events of [start, end], both inclusive under Inside, in the documented item shape', async () => {
    const r = await recordedOf(fic(), 'startTime=2024-05-01T06:00:00Z&endTime=2024-05-01T06:02:00Z');
    expect(r.status).toBe(200);
    expect(r.body.Links).toEqual({});
    expect(r.body.Items).toEqual([
      {
        Timestamp: '2024-05-01T06:00:00Z',
        Value: 0,
        UnitsAbbreviation: 'm3/h',
        Good: true,
        Questionable: false,
        Substituted: false,
        Annotated: false,
      },
      {
        Timestamp: '2024-05-01T06:00:30Z',
        Value: { Name: 'I/O Timeout', Value: 246, IsSystem: true },
        UnitsAbbreviation: 'm3/h',
        Good: false,
        Questionable: false,
        Substituted: false,
        Annotated: false,
      },
      expect.objectContaining({ Timestamp: '2024-05-01T06:01:00Z', Value: 1.5 }),
      expect.objectContaining({ Timestamp: '2024-05-01T06:02:00Z', Value: 3 }),
    ]);
  });

  it('adds the nearest outside values under Outside, descends when end < start, and empties to Items []', async () => {
    const out = await recordedOf(
      fic(),
      'startTime=2024-05-01T06:01:10Z&endTime=2024-05-01T06:02:10Z&boundaryType=Outside',
    );
    expect(out.body.Items.map((i: any) => i.Value)).toEqual([1.5, 3, 4.5]);
    const inside = await recordedOf(fic(), 'startTime=2024-05-01T06:01:10Z&endTime=2024-05-01T06:02:10Z');
    expect(inside.body.Items.map((i: any) => i.Value)).toEqual([3]);
    const desc = await recordedOf(fic(), 'startTime=2024-05-01T06:09:00Z&endTime=2024-05-01T06:07:00Z');
    expect(desc.body.Items.map((i: any) => i.Value)).toEqual([13.5, 12, 10.5]);
    const none = await recordedOf(fic(), 'startTime=2030-01-01T00:00:00Z&endTime=2030-01-02T00:00:00Z');
    expect(none).toEqual({ status: 200, body: { Links: {}, Items: [], UnitsAbbreviation: 'm3/h' } });
  });

  it('reads relative times against its clock (now = 07:00Z) and cuts at maxCount without a next link', async () => {
    const r = await recordedOf(fic(), 'startTime=*-1h&endTime=*&maxCount=3&selectedFields=Items.Value');
    expect(r.body).toEqual({
      Items: [{ Value: 0 }, { Value: { Name: 'I/O Timeout', Value: 246, IsSystem: true } }, { Value: 1.5 }],
    });
  });

  it('refuses maxCount above MaxReturnedItemsPerCall with 400 and Errors', async () => {
    const r = await recordedOf(fic(), 'startTime=*-1d&maxCount=51');
    expect(r.status).toBe(400);
    expect(r.body.Errors[0]).toMatch(/maxCount.*greater than the maximum allowed/);
    expect((await recordedOf(fic(), 'startTime=*-1d&maxCount=50')).status).toBe(200);
  });

  it('keeps an equal-timestamp run longer than a page: a page from T repeats the same first five', async () => {
    const webId = pi.tags.get(RUN.toUpperCase())!.webId;
    const q = 'startTime=2024-05-01T06:00:00Z&endTime=2024-05-01T07:00:00Z&maxCount=5';
    const page = await recordedOf(webId, q);
    expect(page.body.Items.map((i: any) => [i.Timestamp, i.Value])).toEqual(
      [0, 1, 2, 3, 4].map((v) => ['2024-05-01T06:00:00Z', v]),
    );
    const all = await recordedOf(webId, q.replace('maxCount=5', 'maxCount=50'));
    expect(all.body.Items.map((i: any) => i.Value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 99]);
  });

  it('encodes digital states, system states, Errors values and the quality flags', async () => {
    const webId = pi.tags.get(MODE.toUpperCase())!.webId;
    const r = await recordedOf(webId, 'startTime=2024-05-01T06:00:00Z&endTime=2024-05-01T06:00:03Z');
    expect(r.body.Items.map((i: any) => [i.Value, i.Good, i.Questionable, i.Substituted, i.Annotated])).toEqual([
      [{ Name: 'Auto', Value: 2, IsSystem: false }, true, false, false, false],
      [{ Name: 'Pt Created', Value: 253, IsSystem: true }, false, false, false, false],
      [{ Errors: ['Point not found'] }, false, false, false, false],
      [{ Name: 'Manual', Value: 1, IsSystem: false }, true, true, true, true],
    ]);
  });

  it('404s an unknown WebId', async () => {
    const r = await recordedOf('I1DPnope', 'startTime=*-1d');
    expect(r.status).toBe(404);
    expect(r.body.Errors).toHaveLength(1);
  });
});

describe('fake PI Web API: streamsets and batch', () => {
  it('returns one entry per webId, with Errors for an unknown one (207)', async () => {
    const mode = pi.tags.get(MODE.toUpperCase())!.webId;
    const q = `webId=${fic()}&webId=${mode}&webId=bad&startTime=2024-05-01T06:00:00Z&endTime=2024-05-01T06:00:00Z`;
    const r = await json(`streamsets/recorded?${q}`);
    expect(r.status).toBe(207);
    expect(r.body.Items.map((s: any) => [s.WebId, s.Name, s.Path, s.Items.map((i: any) => i.Value)])).toEqual([
      [fic(), 'FIC101.PV', FIC, [0]],
      [mode, 'PUMP1.MODE', MODE, [{ Name: 'Auto', Value: 2, IsSystem: false }]],
      ['bad', undefined, undefined, []],
    ]);
    expect(r.body.Items[2].Errors).toHaveLength(1);
    expect((await json(`streamsets/recorded?webId=${fic()}&startTime=*-1d`)).status).toBe(200);
  });

  it('runs a batch with a parent parameter (207) and refuses a POST without X-Requested-With', async () => {
    const reqs = {
      pt: { Method: 'GET', Resource: `https://pi.example/piwebapi/points?path=${enc(FIC)}&selectedFields=WebId` },
      rec: {
        Method: 'GET',
        ParentIds: ['pt'],
        Parameters: ['$.pt.Content.WebId'],
        Resource: 'https://pi.example/piwebapi/streams/{0}/recorded?startTime=2024-05-01T06:09:00Z&endTime=*',
      },
    };
    const post = (headers: Record<string, string>) =>
      fetch(`${pi.url}/batch`, {
        method: 'POST',
        headers: { authorization: BASIC, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(reqs),
      });
    const refused = await post({});
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { Errors: string[] }).Errors[0]).toContain('X-Requested-With');
    const ok = await post({ 'x-requested-with': 'XMLHttpRequest' });
    expect(ok.status).toBe(207);
    const body = (await ok.json()) as Record<string, any>;
    expect(body.pt).toMatchObject({ Status: 200, Content: { WebId: fic() } });
    expect(body.rec.Status).toBe(200);
    expect(body.rec.Content.Items.map((i: any) => i.Value)).toEqual([13.5]);
  });
});

describe('fake PI Web API: auth and faults', () => {
  it('accepts Basic and Bearer and answers 401 with the accepted methods otherwise', async () => {
    expect((await get(`points?path=${enc(FIC)}`, 'Bearer pi-token-1')).status).toBe(200);
    const wrong = await get(`points?path=${enc(FIC)}`, `Basic ${Buffer.from('piuser:nope').toString('base64')}`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="PI Web API", Bearer');
    expect((await get(`points?path=${enc(FIC)}`, 'Bearer other')).status).toBe(401);
  });

  it('answers a burst of n 503s, then normally again', async () => {
    pi.setMode('status', { status: 503, times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(`points?path=${enc(FIC)}`)).status);
    pi.setMode('ok');
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('answers slowly in slow mode', async () => {
    pi.setMode('slow', { delayMs: 300, times: 1 });
    const t = performance.now();
    const r = await get(`points?path=${enc(FIC)}`);
    pi.setMode('ok');
    expect(r.status).toBe(200);
    expect(performance.now() - t).toBeGreaterThanOrEqual(290);
  });

  it('puts a WebException into a 200 body', async () => {
    pi.setMode('webException', { times: 1 });
    const r = await recordedOf(fic(), 'startTime=*-1d');
    pi.setMode('ok');
    expect(r.status).toBe(200);
    expect(r.body.WebException).toEqual({
      Errors: ['Error occurred during writing of the output stream.'],
      StatusCode: 500,
    });
  });

  it('fails named streams of a stream set with per-item Errors', async () => {
    pi.setMode('itemErrors', { webIds: [fic()] });
    const mode = pi.tags.get(MODE.toUpperCase())!.webId;
    const r = await json(`streamsets/recorded?webId=${fic()}&webId=${mode}&startTime=*-1d`);
    pi.setMode('ok');
    expect(r.body.Items[0]).toMatchObject({ WebId: fic(), Items: [], Errors: ['The fake failed this stream.'] });
    expect(r.body.Items[1].Items).toHaveLength(4);
    expect(r.body.Items[1].Errors).toBeUndefined();
  });
});
