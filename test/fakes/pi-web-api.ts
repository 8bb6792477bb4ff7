import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { FaultBudget, type FakeCall, type FaultMode, type FaultOptions } from './fault.ts';
import { closeServer, listenLocal, readBody } from './http-util.ts';
import {
  encodeEvent,
  parsePiTime,
  type PiEvent,
  piTimestamp,
  type PiTag,
  type PiValue,
  type PointType,
  recorded,
  selectFields,
  series,
  webIdOf,
} from './pi-web-api-data.ts';

/**
 * An in-process AVEVA (OSIsoft) PI Web API after reference/protocols.md §1, under /piwebapi:
 *   GET  points?path=            one point (404 + Errors when unknown)
 *   GET  points/multiple?path=&path=   {Items:[{Identifier, IdentifierType, Object, Exception}]}, 207 if any failed
 *   GET  streams/{webId}/recorded      startTime, endTime, boundaryType Inside|Outside, maxCount, selectedFields
 *   GET  streamsets/recorded?webId=&webId=   {Items:[{WebId, Name, Path, Items, UnitsAbbreviation}]}
 *   POST batch                         sub-requests by key with ParentIds and Parameters ($.key.Content.Field)
 * Basic and/or Bearer auth (401 + WWW-Authenticate otherwise); POST without X-Requested-With is refused (CSRF).
 * maxCount above `maxReturnedItemsPerCall` → 400 with Errors. Recorded data has no next link: page by time.
 *
 * Faults (`setMode`): fault.ts's `status` (e.g. 503 `times` n), `timeout`, `500`, `malformed`, plus
 *   slow           answers after `delayMs`
 *   webException   200 whose body carries a WebException (data endpoints; PI 2017 R2+)
 *   itemErrors     streamsets: the streams in `webIds` (default all) carry Errors instead of Items;
 *                  streams/{webId}/recorded of those (default: none), alone or in a batch, answer 500 with Errors
 *                  ("missing back-end permission" is a 500 of this kind, protocols.md §1)
 * Odd values (equal-timestamp runs, digital and system states, `{Errors}` values) are truth: see pi-web-api-data.ts.
 */
export type PiFaultMode = FaultMode | 'slow' | 'webException' | 'itemErrors';

export interface PiFaultOptions extends FaultOptions {
  /** `slow`: ms before each answer. */
  delayMs?: number;
  /** `itemErrors`: which streams fail (default: every stream of the request). */
  webIds?: string[];
}

export interface TagSpec {
  type?: PointType;
  units?: string;
  webId?: string;
  digitalSet?: { name: string; states: string[] };
  events?: PiEvent[];
  /**
   * Events by formula instead of `events`: `count` of them from `start` every `stepMs`, value `value(i)` (default
   * i), as `series()` would store them. Read exactly as stored events are (recorded()'s boundaries, maxCount,
   * order), without holding them: what a bench of millions of values needs. addEvents on such a tag stores them.
   */
  generate?: Generated;
}

export interface Generated {
  start: number;
  stepMs: number;
  count: number;
  value?: (i: number) => PiValue;
}

export interface PiCall extends FakeCall {
  query: URLSearchParams;
}

export interface FakePiWebApi {
  /** Base URL including /piwebapi. */
  url: string;
  /** Tags by upper-cased path (PI point names are case-insensitive [unverified for paths]). */
  tags: Map<string, PiTag>;
  addTag(path: string, spec?: TagSpec): PiTag;
  /** Appends events to a tag's truth, keeping it sorted (equal timestamps stay in insertion order). */
  addEvents(path: string, events: PiEvent[]): void;
  /** The server's MaxReturnedItemsPerCall (PI default 150,000). */
  maxReturnedItemsPerCall: number;
  trace: PiCall[];
  setMode(mode: PiFaultMode, opts?: PiFaultOptions): void;
  close(): Promise<void>;
}

export interface PiAuth {
  basic?: { user: string; password: string };
  bearer?: string;
}

type Answer = { status: number; body: unknown };
const errors = (status: number, ...messages: string[]): Answer => ({ status, body: { Errors: messages } });

export async function startPiWebApi(
  opts: {
    auth?: PiAuth;
    maxReturnedItemsPerCall?: number;
    /** "now" for `*` time strings, so relative times are repeatable. */
    now?: () => number;
    /** Status for a POST without X-Requested-With: protocols.md names the defence, not its status [unverified]. */
    csrfStatus?: number;
    server?: string;
  } = {},
): Promise<FakePiWebApi> {
  const auth = opts.auth ?? { basic: { user: 'piuser', password: 'pi-password-1' }, bearer: 'pi-token-1' };
  const now = opts.now ?? Date.now;
  let mode: PiFaultMode = 'ok';
  let fault: PiFaultOptions = {};
  let budget = new FaultBudget();
  let origin = '';

  const tagByWebId = (webId: string) => [...fake.tags.values()].find((t) => t.webId === webId);
  /** Tags whose events are a formula (TagSpec.generate) until addEvents stores them. */
  const generated = new Map<PiTag, Generated>();
  const eventsIn = (t: PiTag, r: { start: number; end: number; boundary: 'Inside' | 'Outside'; maxCount: number }) => {
    const g = generated.get(t);
    return g
      ? generatedRecorded(g, r.start, r.end, r.boundary, r.maxCount)
      : recorded(t, r.start, r.end, r.boundary, r.maxCount);
  };
  const pointObject = (t: PiTag) => ({
    WebId: t.webId,
    Id: t.id,
    Name: t.name,
    Path: t.path,
    Descriptor: '',
    PointClass: 'classic',
    PointType: t.type,
    DigitalSetName: t.digitalSet?.name ?? '',
    EngineeringUnits: t.units,
    Span: 100,
    Zero: 0,
    Step: t.type === 'Digital' || t.type === 'String',
    Future: false,
    DisplayDigits: -5,
    Links: { Self: `${origin}/piwebapi/points/${t.webId}` },
  });

  /**
   * What ok() answers for a generated tag's recorded events, made cheaply: selecting fields item by item costs
   * more than everything else a call does. Its numeric events encode alike but for Timestamp and Value, so one of
   * them encoded and selected the general way is the template of all (same keys, same order); others go the
   * general way.
   */
  const selectedGenerated = (t: PiTag, events: PiEvent[], fields: string | null) => {
    const body = selectFields({ Links: {}, Items: [], UnitsAbbreviation: t.units }, fields) as Record<string, unknown>;
    if (!('Items' in body)) return body;
    const general = (e: PiEvent) =>
      (selectFields({ Items: [encodeEvent(t, e)] }, fields) as { Items: unknown[] }).Items[0];
    let template: Record<string, unknown> | undefined;
    body.Items = events.map((e) => {
      if (typeof e.value !== 'number') return general(e);
      template ??= general({ ts: e.ts, value: 0 }) as Record<string, unknown>;
      const item = { ...template };
      if ('Timestamp' in item) item.Timestamp = piTimestamp(e.ts);
      if ('Value' in item) item.Value = e.value;
      return item;
    });
    return body;
  };

  /** startTime/endTime/boundaryType/maxCount as getrecorded documents them, or the 400 PI answers. */
  const rangeOf = (q: URLSearchParams) => {
    const start = parsePiTime(q.get('startTime') ?? '*-1d', now());
    const end = parsePiTime(q.get('endTime') ?? '*', now());
    if (start === undefined) return errors(400, `The time string '${q.get('startTime')}' is not valid.`);
    if (end === undefined) return errors(400, `The time string '${q.get('endTime')}' is not valid.`);
    const boundary = q.get('boundaryType') ?? 'Inside';
    if (!/^(inside|outside)$/i.test(boundary))
      return errors(400, `The fake supports boundaryType Inside and Outside only, not '${boundary}'.`);
    // The cap is checked against an explicit maxCount; the default (1000) is kept under a smaller test cap.
    const maxCount = Number(q.get('maxCount') ?? Math.min(1000, fake.maxReturnedItemsPerCall));
    if (!Number.isInteger(maxCount) || maxCount < 1)
      return errors(400, `The value '${q.get('maxCount')}' is not valid for maxCount.`);
    if (maxCount > fake.maxReturnedItemsPerCall)
      return errors(400, `Parameter 'maxCount' is greater than the maximum allowed (${fake.maxReturnedItemsPerCall}).`);
    const b = boundary.toLowerCase() === 'outside' ? ('Outside' as const) : ('Inside' as const);
    return { start, end, boundary: b, maxCount };
  };

  /** One GET, as the HTTP front and the batch both run it. */
  const get = (path: string, q: URLSearchParams): Answer => {
    const fields = q.get('selectedFields');
    const ok = (body: unknown, status = 200): Answer => ({ status, body: selectFields(body, fields) });
    if (path === '/piwebapi/points') {
      const p = q.get('path');
      if (!p) return errors(400, "The parameter 'path' is required.");
      const t = fake.tags.get(p.toUpperCase());
      return t ? ok(pointObject(t)) : errors(404, `A PI point with the path '${p}' was not found.`);
    }
    if (path === '/piwebapi/points/multiple') {
      const items = [
        ...q.getAll('path').map((p) => ({ id: p, type: 'Path', t: fake.tags.get(p.toUpperCase()) })),
        ...q.getAll('webId').map((w) => ({ id: w, type: 'WebId', t: tagByWebId(w) })),
      ].map(({ id, type, t }) => ({
        Identifier: id,
        IdentifierType: type,
        Object: t ? pointObject(t) : null,
        Exception: t ? null : { Errors: [`A PI point with the ${type.toLowerCase()} '${id}' was not found.`] },
      }));
      return ok({ Links: {}, Items: items }, items.some((i) => i.Exception) ? 207 : 200);
    }
    const stream = /^\/piwebapi\/streams\/([^/]+)\/recorded$/.exec(path);
    if (stream) {
      const t = tagByWebId(decodeURIComponent(stream[1] ?? ''));
      if (!t) return errors(404, `The WebId '${stream[1]}' was not found.`);
      if (mode === 'itemErrors' && fault.webIds?.includes(t.webId) && budget.take())
        return errors(500, 'The fake failed this stream.');
      const r = rangeOf(q);
      if ('status' in r) return r;
      if (generated.has(t)) return { status: 200, body: selectedGenerated(t, eventsIn(t, r), fields) };
      const items = eventsIn(t, r).map((e) => encodeEvent(t, e));
      return ok({ Links: {}, Items: items, UnitsAbbreviation: t.units });
    }
    if (path === '/piwebapi/streamsets/recorded') {
      const r = rangeOf(q);
      if ('status' in r) return r;
      const failing = mode === 'itemErrors' ? (fault.webIds ?? q.getAll('webId')) : [];
      const items = q.getAll('webId').map((w) => {
        const t = tagByWebId(w);
        // [unverified] the shape of a failed stream inside a stream set: WebId, empty Items, Errors.
        if (!t) return { WebId: w, Items: [], Errors: [`The WebId '${w}' was not found.`] };
        if (failing.includes(w))
          return { WebId: w, Name: t.name, Path: t.path, Items: [], Errors: ['The fake failed this stream.'] };
        const values = eventsIn(t, r).map((e) => encodeEvent(t, e));
        return { WebId: w, Name: t.name, Path: t.path, Links: {}, Items: values, UnitsAbbreviation: t.units };
      });
      // [unverified] whether PI answers a stream set with failed streams 200 or 207; the fake says 207 like points.
      return ok({ Links: {}, Items: items }, items.some((i) => 'Errors' in i) ? 207 : 200);
    }
    return errors(404, `The resource '${path}' was not found.`);
  };

  /** POST /batch [doc: batch/actions/execute]: 207 with {key: {Status, Headers, Content}}. */
  const batch = (text: string): Answer => {
    let reqs: Record<string, { Method?: string; Resource?: string; ParentIds?: string[]; Parameters?: string[] }>;
    try {
      reqs = JSON.parse(text);
    } catch {
      return errors(400, 'The request body is not valid JSON.');
    }
    const out: Record<string, { Status: number; Headers: Record<string, string>; Content: unknown }> = {};
    const run = (key: string, seen: string[]) => {
      if (out[key]) return;
      const r = reqs[key] ?? {};
      const fail = (status: number, m: string) => {
        out[key] = { Status: status, Headers: {}, Content: { Errors: [m] } };
      };
      if (seen.includes(key)) return fail(400, `The request '${key}' depends on itself.`);
      for (const p of r.ParentIds ?? []) {
        if (!reqs[p]) return fail(400, `The parent request '${p}' does not exist.`);
        run(p, [...seen, key]);
        // [unverified] the status of a child whose parent failed.
        if ((out[p]?.Status ?? 500) >= 400) return fail(409, `The parent request '${p}' failed.`);
      }
      let resource = r.Resource ?? '';
      const params = (r.Parameters ?? []).map((jp) => String(jsonPath(out, jp) ?? ''));
      params.forEach((v, i) => {
        resource = resource.replaceAll(`{${i}}`, encodeURIComponent(v));
      });
      if ((r.Method ?? 'GET').toUpperCase() !== 'GET') return fail(405, 'The fake batch runs GET requests only.');
      const u = new URL(resource, `${origin}/piwebapi/`);
      const a = get(u.pathname, u.searchParams);
      out[key] = { Status: a.status, Headers: { 'Content-Type': 'application/json; charset=utf-8' }, Content: a.body };
    };
    for (const key of Object.keys(reqs)) run(key, []);
    return { status: 207, body: out };
  };

  const fake: FakePiWebApi = {
    url: '',
    tags: new Map(),
    maxReturnedItemsPerCall: opts.maxReturnedItemsPerCall ?? 150_000,
    trace: [],
    addTag: (path, spec = {}) => {
      const tag: PiTag = {
        path,
        name: path.split('\\').pop() ?? path,
        webId: spec.webId ?? webIdOf(path),
        id: fake.tags.size + 1,
        type: spec.type ?? 'Float32',
        units: spec.units ?? '',
        digitalSet: spec.digitalSet,
        events: [],
      };
      fake.tags.set(path.toUpperCase(), tag);
      if (spec.generate && spec.events?.length) throw new Error(`${path}: events or generate, not both`);
      if (spec.generate) generated.set(tag, spec.generate);
      else fake.addEvents(path, spec.events ?? []);
      return tag;
    },
    addEvents: (path, events) => {
      const tag = fake.tags.get(path.toUpperCase());
      if (!tag) throw new Error(`no tag ${path}`);
      const g = generated.get(tag);
      if (g) {
        generated.delete(tag);
        tag.events = series(g.start, g.count, g.stepMs, g.value);
      }
      // Array.prototype.sort is stable: equal timestamps keep insertion order.
      tag.events = [...tag.events, ...events].sort((a, b) => a.ts - b.ts);
    },
    setMode: (m, o = {}) => {
      mode = m;
      fault = o;
      budget = new FaultBudget(o.times);
    },
    close: () => closeServer(server),
  };

  const send = (res: ServerResponse, a: Answer, headers: Record<string, string> = {}) => {
    const text = typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
    res.writeHead(a.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  const authorized = (req: IncomingMessage) => {
    const h = req.headers.authorization ?? '';
    const b = auth.basic;
    if (b && h === `Basic ${Buffer.from(`${b.user}:${b.password}`).toString('base64')}`) return true;
    return Boolean(auth.bearer) && h === `Bearer ${auth.bearer}`;
  };

  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', origin || 'http://fake');
    const call: PiCall = {
      at: performance.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
    };
    fake.trace.push(call);
    res.on('finish', () => {
      call.answered = res.statusCode;
      call.answeredAt = performance.now();
    });
    if (!authorized(req)) {
      // The discovery answer of protocols.md: the methods the server accepts, in WWW-Authenticate.
      const challenge = [auth.basic ? 'Basic realm="PI Web API"' : '', auth.bearer ? 'Bearer' : '']
        .filter(Boolean)
        .join(', ');
      return send(res, errors(401, 'Authorization has been denied for this request.'), {
        'www-authenticate': challenge,
      });
    }
    if (mode === 'timeout') {
      call.answered = 'no answer';
      return;
    }
    if (mode === 'slow' && budget.take()) await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    if (mode === 'status' && budget.take()) return send(res, errors(fault.status ?? 503, 'Service Unavailable'));
    if (mode === '500' && budget.take()) return send(res, errors(500, 'An internal server error occurred.'));

    if (req.method === 'POST' && url.pathname === '/piwebapi/batch') {
      if (!req.headers['x-requested-with'])
        return send(res, errors(opts.csrfStatus ?? 400, 'The X-Requested-With header is required for this request.'));
      return send(res, batch(body));
    }
    if (req.method !== 'GET') return send(res, errors(405, `The method ${req.method} is not allowed here.`));
    const a = get(url.pathname, url.searchParams);
    const data = /\/(recorded)$/.test(url.pathname) && a.status < 300;
    if (data && mode === 'malformed' && budget.take())
      return send(res, { status: 200, body: '{"Links":{},"Items":[{"Ti' });
    if (data && mode === 'webException' && budget.take()) {
      // The stream broke mid-write: PI still says 200 but the body names the failure (topics/error-handling).
      const partial = { ...(a.body as object), Items: ((a.body as { Items: unknown[] }).Items ?? []).slice(0, 1) };
      const we = { Errors: ['Error occurred during writing of the output stream.'], StatusCode: 500 };
      return send(res, { status: 200, body: { ...partial, WebException: we } });
    }
    return send(res, a);
  });
  origin = await listenLocal(server);
  fake.url = `${origin}/piwebapi`;
  return fake;
}

/**
 * recorded() (pi-web-api-data.ts) over a generated tag, step for step, with indices computed instead of searched:
 * event i is at g.start + i × g.stepMs, so "the first at or after lo" and "the first after hi" are divisions. Only
 * the events answered are made.
 */
export function generatedRecorded(
  g: Generated,
  start: number,
  end: number,
  boundary: 'Inside' | 'Outside',
  maxCount: number,
): PiEvent[] {
  const n = g.count;
  const tsAt = (i: number) => (i >= 0 && i < n ? g.start + i * g.stepMs : undefined); // ev[i]?.ts
  const clamp = (i: number) => Math.min(n, Math.max(0, i));
  const [lo, hi] = start <= end ? [start, end] : [end, start];
  let from = clamp(Math.ceil((lo - g.start) / g.stepMs));
  let to = clamp(Math.floor((hi - g.start) / g.stepMs) + 1);
  if (boundary === 'Outside') {
    if (from > 0 && tsAt(from) !== lo) from--;
    if (to < n && tsAt(to - 1) !== hi) to++;
  }
  const take = Math.max(0, Math.min(maxCount, to - from));
  const value = g.value ?? ((i: number) => i);
  return Array.from({ length: take }, (_, k) => {
    const i = start > end ? to - 1 - k : from + k;
    return { ts: tsAt(i)!, value: value(i) };
  });
}

/** `$.key.Content.Field` or `$.key.Content.Items[0].WebId` into the batch results so far. */
function jsonPath(root: unknown, path: string): unknown {
  const parts = path.replace(/^\$\.?/, '').match(/[^.[\]]+/g) ?? [];
  return parts.reduce<unknown>(
    (v, p) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined),
    root,
  );
}
