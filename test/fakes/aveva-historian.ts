import { createServer, type ServerResponse } from 'node:http';
import {
  FaultBudget,
  faultOptions,
  retryAfterHeader,
  seeded,
  type FakeCall,
  type FaultMode,
  type FaultOptions,
} from './fault.ts';
import { closeServer, listenLocal, stallMidBody } from './http-util.ts';

/**
 * An in-process AVEVA (Wonderware) Historian REST/OData v2 server (reference/protocols.md §2, docs.aveva.com
 * sp-historian pages 259561 ProcessValues, 259559 Tags, 443483 versions): GET {basePath}/Tags and
 * {basePath}/ProcessValues, $filter (FQN eq '..' joined by `or`, unquoted DateTime ge/gt/le/lt, Tags also
 * startswith(FQN,'..') and Source eq '..'), $top, $skip, $select, a server page size answered with an opaque
 * @odata.nextLink ($skiptoken), raw values only (RetrievalMode absent, Delta or Full). Timestamps are UTC with 7
 * fractional digits (datetime2(7)), kept as 100 ns ticks so sub-millisecond truth survives. Auth: HTTP Basic and/or
 * Bearer. Errors are OData JSON error bodies. Faults: fault.ts modes plus 'slow' (`delayMs` before each answer).
 */
export type HistorianTagType = 'analog' | 'discrete' | 'string';

/** One stored VTQ. `value` null is a NULL (bad) row; discrete values are 0/1; string tags hold text. */
export interface HistorianValue {
  ts: string;
  value: number | string | null;
  opcQuality?: number;
  quality?: number;
  qualityDetail?: number;
}

export interface HistorianTagSpec {
  type: HistorianTagType;
  unit?: string;
  description?: string;
  values?: HistorianValue[];
  /** Deterministic series: `count` values every `stepMs` from `start`, value(i) (default i). */
  generate?: { start: string; stepMs: number; count: number; value?: (i: number) => number | string | null };
}

interface StoredTag {
  fqn: string;
  type: HistorianTagType;
  unit: string;
  description: string;
  values: (HistorianValue & { ticks: bigint })[];
}

export type HistorianMode = FaultMode | 'slow';
export interface HistorianFaultOptions extends FaultOptions {
  /** 'slow': ms to wait before each answer. */
  delayMs?: number;
}

export interface HistorianCall extends FakeCall {
  /** The raw query string (after '?'), to see what a client asked. */
  query: string;
  auth?: 'basic' | 'bearer';
}

export interface FakeHistorian {
  url: string;
  basePath: string;
  /** Accepted credentials; a test may change them. null turns that scheme off. */
  basic: { user: string; password: string } | null;
  bearer: string | null;
  /** Rows the server puts on one page at most (then @odata.nextLink). */
  pageSize: number;
  /** ProcessValues naming an FQN that does not exist: 404 (documented) or an empty 200. */
  unknownTag: '404' | 'empty';
  /** Quality and QualityDetail columns in ProcessValues rows (the documented REST sample has only OpcQuality). */
  qualityColumns: boolean;
  tags: Map<string, StoredTag>;
  addTag(fqn: string, spec: HistorianTagSpec): void;
  trace: HistorianCall[];
  setMode(mode: HistorianMode, opts?: number | HistorianFaultOptions): void;
  close(): Promise<void>;
}

const TICKS_PER_MS = 10_000n;
const ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z?$/;

/** ISO 8601 UTC ('Z' optional, as in the docs' `DateTime+gt+2017-07-13T00:00:00`) to 100 ns ticks. */
export function toTicks(iso: string): bigint | undefined {
  const m = ISO.exec(iso);
  const ms = m ? Date.parse(`${m[1]}Z`) : Number.NaN;
  if (!m || Number.isNaN(ms)) return undefined;
  return BigInt(ms) * TICKS_PER_MS + BigInt((m[2] ?? '').padEnd(7, '0'));
}

/** Ticks back to the Historian's wire form, e.g. 2020-10-29T16:57:29.0128451Z. */
export function fromTicks(t: bigint): string {
  const seconds = new Date(Number((t / 10_000_000n) * 1000n)).toISOString().slice(0, 19);
  return `${seconds}.${String(t % 10_000_000n).padStart(7, '0')}Z`;
}

/** OData JSON error body (the docs show `{ error: "FQN doesn't exist" }`; OData v4 nests code and message). */
const odataError = (code: string, message: string) => ({ error: { code, message } });

/** An OData string literal's content: '' is an escaped quote. */
const unquote = (s: string | undefined) => (s ?? '').replace(/''/g, "'");

/** Splits at a top-level keyword (` and ` / ` or `), never inside quotes or parentheses. */
function splitTop(s: string, word: 'and' | 'or'): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") quoted = !quoted;
    else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')') depth--;
    else if (!quoted && depth === 0 && s.slice(i, i + word.length + 2).toLowerCase() === ` ${word} `) {
      parts.push(s.slice(start, i));
      start = i + word.length + 2;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

interface Filter {
  fqns: string[];
  prefix?: string;
  source?: string;
  from?: { t: bigint; inclusive: boolean };
  to?: { t: bigint; inclusive: boolean };
}

/** Parses the $filter subset the fake knows; anything else is a 400 (as a real OData parser would refuse it). */
function parseFilter(text: string, resource: 'Tags' | 'ProcessValues'): Filter | string {
  const f: Filter = { fqns: [] };
  if (!text.trim()) return f;
  for (let clause of splitTop(text, 'and')) {
    if (/^\(.*\)$/.test(clause)) clause = clause.slice(1, -1).trim();
    const fqns = splitTop(clause, 'or').map((c) => {
      const m = /^FQN eq '((?:[^']|'')*)'$/i.exec(c);
      return m ? unquote(m[1]) : undefined;
    });
    if (fqns.every((x) => x !== undefined)) {
      f.fqns.push(...(fqns as string[]));
      continue;
    }
    const sw = /^startswith\(\s*FQN\s*,\s*'((?:[^']|'')*)'\s*\)$/i.exec(clause);
    const src = /^Source eq '((?:[^']|'')*)'$/i.exec(clause);
    const dt = /^DateTime (ge|gt|le|lt) (\S+)$/i.exec(clause);
    if (resource === 'Tags' && sw) f.prefix = unquote(sw[1]);
    else if (resource === 'Tags' && src) f.source = unquote(src[1]);
    else if (resource === 'ProcessValues' && dt) {
      // v2 does not quote DateTime; a quoted or v1-style datetimeoffset'..' literal does not parse.
      const [, op = '', literal = ''] = dt;
      const t = toTicks(literal);
      if (t === undefined) return `The DateTime literal '${literal}' is not valid (v2: unquoted ISO 8601 UTC)`;
      if (/^g/i.test(op)) f.from = { t, inclusive: /^ge$/i.test(op) };
      else f.to = { t, inclusive: /^le$/i.test(op) };
    } else return `Syntax error in $filter at '${clause}'`;
  }
  return f;
}

/** Query options carried from the first request through every $skiptoken (so the next link continues exactly). */
interface Query {
  filter: string;
  select?: string;
  top?: number;
  offset: number;
  /** The empty-page fault was served for this offset already. */
  e?: boolean;
}

const encodeToken = (q: Query) => Buffer.from(JSON.stringify(q)).toString('base64url');
function decodeToken(t: string): Query | undefined {
  try {
    const q = JSON.parse(Buffer.from(t, 'base64url').toString('utf8')) as Query;
    return typeof q.filter === 'string' && Number.isInteger(q.offset) ? q : undefined;
  } catch {
    return undefined;
  }
}

const TAG_TYPE = { analog: 'Analog', discrete: 'Discrete', string: 'String' } as const;

export async function startHistorian(
  opts: {
    basePath?: string;
    basic?: { user: string; password: string } | null;
    bearer?: string | null;
    pageSize?: number;
  } = {},
): Promise<FakeHistorian> {
  let mode: HistorianMode = 'ok';
  let fault: HistorianFaultOptions = {};
  let budget = new FaultBudget();
  let random = seeded(7);
  const fake: FakeHistorian = {
    url: '',
    basePath: opts.basePath ?? '/Historian/v2',
    basic: opts.basic === undefined ? { user: 'hist-reader', password: 'hist-pass-1' } : opts.basic,
    bearer: opts.bearer === undefined ? 'hist-token-1' : opts.bearer,
    pageSize: opts.pageSize ?? 1000,
    unknownTag: '404',
    qualityColumns: true,
    tags: new Map(),
    addTag: (fqn, spec) => {
      const g = spec.generate;
      const generated: HistorianValue[] = g
        ? Array.from({ length: g.count }, (_, i) => ({
            ts: new Date(Date.parse(g.start) + i * g.stepMs).toISOString(),
            value: g.value ? g.value(i) : i,
          }))
        : [];
      const values = [...(spec.values ?? []), ...generated].map((v) => {
        const ticks = toTicks(v.ts);
        if (ticks === undefined) throw new Error(`addTag ${fqn}: bad timestamp ${v.ts}`);
        return { ...v, ticks };
      });
      values.sort((a, b) => (a.ticks < b.ticks ? -1 : a.ticks > b.ticks ? 1 : 0));
      fake.tags.set(fqn, { fqn, type: spec.type, unit: spec.unit ?? '', description: spec.description ?? '', values });
    },
    trace: [],
    setMode: (m, o) => {
      mode = m;
      fault = faultOptions(o);
      budget = new FaultBudget(fault.times);
      random = seeded(fault.seed ?? 7);
    },
    close: () => closeServer(server),
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; odata.metadata=minimal',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  const authorize = (header: string | undefined): 'basic' | 'bearer' | undefined => {
    const b = fake.basic;
    if (b && header === `Basic ${Buffer.from(`${b.user}:${b.password}`).toString('base64')}`) return 'basic';
    if (fake.bearer && header === `Bearer ${fake.bearer}`) return 'bearer';
    return undefined;
  };

  const tagRow = (t: StoredTag) => ({
    FQN: t.fqn,
    Source: t.fqn.includes('.') ? t.fqn.slice(0, t.fqn.indexOf('.')) : '',
    TagName: t.fqn.includes('.') ? t.fqn.slice(t.fqn.indexOf('.') + 1) : t.fqn,
    TagType: TAG_TYPE[t.type],
    Description: t.description,
    EngUnit: t.unit,
    ...(t.type === 'discrete' ? { MessageOn: 'On', MessageOff: 'Off' } : {}),
  });

  const valueRow = (t: StoredTag, v: StoredTag['values'][number]) => {
    // String tags carry their value in Text (Value is NULL, as in the History table); discrete Text is the message.
    const isString = t.type === 'string';
    const text = v.value === null ? null : t.type === 'discrete' ? (v.value ? 'On' : 'Off') : String(v.value);
    return {
      FQN: t.fqn,
      DateTime: fromTicks(v.ticks),
      OpcQuality: v.opcQuality ?? 192,
      ...(fake.qualityColumns ? { Quality: v.quality ?? 0, QualityDetail: v.qualityDetail ?? 192 } : {}),
      Value: isString ? null : v.value,
      Text: text,
      Unit: t.unit,
    };
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const call: HistorianCall = {
      at: performance.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search.slice(1),
    };
    fake.trace.push(call);
    res.on('finish', () => {
      call.answered = res.statusCode;
      call.answeredAt = performance.now();
    });
    call.auth = authorize(req.headers.authorization);
    if (!call.auth) {
      const schemes = [fake.basic ? 'Basic realm="Historian"' : '', fake.bearer ? 'Bearer' : ''].filter(Boolean);
      return send(res, 401, odataError('Unauthorized', 'You are unauthorized to make this request.'), {
        'www-authenticate': schemes.join(', '),
      });
    }
    if (mode === 'timeout') {
      call.answered = 'no answer';
      return;
    }
    if (mode === 'slow' && budget.take()) await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    if (mode === 'status' && budget.take())
      return send(
        res,
        fault.status ?? 503,
        odataError(String(fault.status ?? 503), `the fake answers ${fault.status ?? 503}`),
        retryAfterHeader(fault),
      );
    if (mode === '500' && budget.take()) return send(res, 500, odataError('InternalServerError', 'Server error'));
    if (mode === 'flaky30' && random() < 0.3) return send(res, 503, odataError('503', 'Service unavailable'));

    const base = fake.basePath.toLowerCase();
    const path = url.pathname.toLowerCase();
    const resource = path === `${base}/tags` ? 'Tags' : path === `${base}/processvalues` ? 'ProcessValues' : undefined;
    if (!resource) return send(res, 404, odataError('NotFound', `No resource at '${url.pathname}'`));
    if (req.method !== 'GET') return send(res, 405, odataError('MethodNotAllowed', `${req.method} not supported`));

    // The query: from the $skiptoken (a followed next link) or from the request's own options.
    const p = url.searchParams;
    let q: Query;
    const token = p.get('$skiptoken');
    if (token !== null) {
      const decoded = decodeToken(token);
      if (!decoded) return send(res, 400, odataError('BadRequest', 'The $skiptoken is not valid'));
      q = decoded;
    } else {
      const num = (name: string): number | undefined | string => {
        const v = p.get(name);
        if (v === null) return undefined;
        return /^\d+$/.test(v) ? Number(v) : `Invalid value '${v}' for ${name}`;
      };
      const top = num('$top');
      const skip = num('$skip');
      if (typeof top === 'string' || typeof skip === 'string')
        return send(res, 400, odataError('BadRequest', String(typeof top === 'string' ? top : skip)));
      const rm = p.get('RetrievalMode');
      if (resource === 'ProcessValues' && rm && !/^(delta|full)$/i.test(rm))
        return send(res, 400, odataError('BadRequest', `RetrievalMode ${rm} is not served by the fake (raw only)`));
      // OData applies $skip before $top: the answer ends $top rows after the skipped ones (q.top is that end).
      const offset = skip ?? 0;
      q = { filter: p.get('$filter') ?? '', select: p.get('$select') ?? undefined, top: top && offset + top, offset };
    }

    const f = parseFilter(q.filter, resource);
    if (typeof f === 'string') return send(res, 400, odataError('BadRequest', f));
    let rows: Record<string, unknown>[];
    if (resource === 'Tags') {
      rows = [...fake.tags.values()]
        .filter((t) => !f.fqns.length || f.fqns.some((x) => x.toLowerCase() === t.fqn.toLowerCase()))
        .filter((t) => !f.prefix || t.fqn.toLowerCase().startsWith(f.prefix.toLowerCase()))
        .filter((t) => !f.source || tagRow(t).Source.toLowerCase() === f.source.toLowerCase())
        .sort((a, b) => a.fqn.localeCompare(b.fqn))
        .map(tagRow);
    } else {
      if (!f.fqns.length) return send(res, 400, odataError('BadRequest', 'FQN is required ($filter=FQN eq ...)'));
      const known = f.fqns.map((x) => fake.tags.get(x));
      const missing = f.fqns.filter((_, i) => !known[i]);
      if (missing.length && fake.unknownTag === '404')
        return send(res, 404, odataError('NotFound', `FQN doesn't exist: ${missing.join(', ')}`));
      // One tag after another, in the filter's order, each by time (the real order for several tags: unverified).
      rows = known.flatMap((t) =>
        t
          ? t.values
              .filter(
                (v) =>
                  (!f.from || (f.from.inclusive ? v.ticks >= f.from.t : v.ticks > f.from.t)) &&
                  (!f.to || (f.to.inclusive ? v.ticks <= f.to.t : v.ticks < f.to.t)),
              )
              .map((v) => valueRow(t, v))
          : [],
      );
    }
    if (q.select) {
      const fields = q.select.split(',').map((s) => s.trim());
      const unknown = fields.find((s) => rows[0] && !(s in rows[0]));
      if (unknown) return send(res, 400, odataError('BadRequest', `Could not find a property named '${unknown}'`));
      rows = rows.map((r) => Object.fromEntries(fields.map((s) => [s, r[s]])));
    }
    // $top bounds the whole answer across pages; the server's page size cuts it into pages.
    const end = q.top === undefined ? rows.length : Math.min(rows.length, q.top);
    const link = (next: Query) =>
      `${fake.url}${fake.basePath}/${resource}?$skiptoken=${encodeURIComponent(encodeToken(next))}`;
    const context = `${fake.url}${fake.basePath}/$metadata#${resource}`;
    const followed = token !== null;
    let page: Record<string, unknown>[];
    let nextLink: string | undefined;
    if (mode === 'emptyPage' && followed && !q.e && budget.take()) {
      // An empty page that still promises more: following it continues at the same place.
      page = [];
      nextLink = link({ ...q, e: true });
    } else {
      page = rows.slice(q.offset, Math.min(end, q.offset + fake.pageSize));
      const offset = q.offset + page.length;
      nextLink = offset < end ? link({ ...q, offset, e: undefined }) : undefined;
      // The lying server: a followed link answers the same page and the same link again, forever.
      if (mode === 'repeatPage' && followed && budget.take()) nextLink = link(q);
    }
    if (mode === 'malformed') return send(res, 200, `{"@odata.context":"${context}","value":[{"FQN":"`);
    const answer = { '@odata.context': context, value: page, ...(nextLink ? { '@odata.nextLink': nextLink } : {}) };
    if (mode === 'stallBody' && budget.take()) {
      call.answered = 'stalled';
      call.answeredAt = performance.now();
      return stallMidBody(res, 200, { 'content-type': 'application/json' }, JSON.stringify(answer));
    }
    return send(res, 200, answer);
  });
  fake.url = await listenLocal(server);
  return fake;
}

/** OPC qualities to cover in a test: good 192–219 (216 local override), uncertain 64–91, bad 0–35. */
export const OPC_QUALITY_SWEEP = [192, 193, 202, 216, 219, 64, 68, 91, 0, 4, 24, 35] as const;
/** Historian Quality codes: 0 Good, 1 Bad, 16 Doubtful, 133 Initial value. */
export const QUALITY_SWEEP = [133, 0, 1, 16] as const;

/**
 * Deterministic rows covering every OPC quality and Quality code: row i at start + i·stepMs, value i (NULL where
 * Quality is 1 Bad, QualityDetail 24 as for bad NULL inserts; 133 rows get QualityDetail 252 "first value").
 */
export function qualitySweepValues(start: string, stepMs: number): HistorianValue[] {
  return OPC_QUALITY_SWEEP.map((opcQuality, i) => {
    const quality = QUALITY_SWEEP[i % QUALITY_SWEEP.length];
    return {
      ts: new Date(Date.parse(start) + i * stepMs).toISOString(),
      value: quality === 1 ? null : i,
      opcQuality,
      quality,
      qualityDetail: quality === 1 ? 24 : quality === 133 ? 252 : 192,
    };
  });
}

/** Text values a string tag may hold that must not be read as numbers. */
export const STRING_SWEEP = ['Running', '', '42abc', 'NaN', '1e999', '  7  ', 'Ölpumpe ✓', 'null'] as const;
