import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  FaultBudget,
  faultOptions,
  retryAfterHeader,
  seeded,
  type FakeCall,
  type FaultMode,
  type FaultOptions,
} from './fault.ts';
import { closeServer, listenLocal, readBody, stallMidBody } from './http-util.ts';

/**
 * An in-process JSON REST MES: schedules paged by limit/offset (`{ items, total, hasMore }`) or, with
 * `paging: 'nextLink'`, by an opaque cursor link in the body (`{ items, links: { next } }`, absent on the last page),
 * in the field names of mes.yml's defaults (OrderNumber, LineCode, MaterialNumber, PlannedStart, ...), work orders,
 * recipes, consumption and order status reports with an Idempotency-Key (a key seen before is answered 200 with
 * `Idempotent-Replayed: true` and not applied again).
 * Auth (`auth`): OAuth2 client-credentials (POST /oauth/token, HTTP Basic client auth; the default), HTTP Basic, or
 * an API key in a header or a query parameter. A request without valid credentials gets 401.
 */
export interface MesOrder {
  OrderNumber: string;
  LineCode: string;
  MaterialNumber: string | null;
  PlannedStart: string;
  PlannedEnd: string;
  TargetQuantity: number | string;
  Status: string;
  Priority?: number;
  ActualQuantity?: number | null;
  RecipeId?: string | null;
  [k: string]: unknown;
}

export type FakeRestAuth =
  | { type: 'oauth2' }
  | { type: 'basic'; user: string; password: string }
  | { type: 'apiKey'; key: string; header?: string; queryParam?: string };

export interface FakeRestMes {
  url: string;
  clientId: string;
  clientSecret: string;
  orders: Map<string, MesOrder>;
  recipes: Map<string, Record<string, unknown>>;
  consumption: Map<string, Record<string, unknown>[]>;
  /** Status reports applied, by idempotency key (a replay does not count). */
  applied: Map<string, { order: string; body: Record<string, unknown>; count: number }>;
  statusRequests: number;
  tokenRequests: number;
  calls: number;
  /** Every request but token requests, in arrival order. */
  trace: FakeCall[];
  /** Requests refused for missing or wrong credentials. */
  unauthorized: number;
  /** The credentials it accepts; a test may change them (a password rotated on the MES side). */
  auth: FakeRestAuth;
  /** `scope` 'status': only status reports fail; a number as third argument is the seed (older callers). */
  setMode(mode: FaultMode, scope?: 'all' | 'status', opts?: number | FaultOptions): void;
  /**
   * Holds every status report until `release()`: `arrived` resolves when the first one is waiting (a test looks at
   * the database while the hub's call is in flight).
   */
  holdStatus(): { arrived: Promise<void>; release(): void };
  /** Invalidates every token issued so far: the next call with one gets 401. */
  revokeTokens(): void;
  close(): Promise<void>;
}

export async function startRestMes(
  opts: {
    seed?: number;
    clientId?: string;
    clientSecret?: string;
    auth?: FakeRestAuth;
    paging?: 'offset' | 'nextLink';
  } = {},
): Promise<FakeRestMes> {
  const clientId = opts.clientId ?? 'hub-client';
  const clientSecret = opts.clientSecret ?? 'hub-secret-value';
  const tokens = new Set<string>();
  let mode: FaultMode = 'ok';
  let modeScope: 'all' | 'status' = 'all';
  let fault: FaultOptions = {};
  let budget = new FaultBudget();
  let random = seeded(opts.seed ?? 7);
  let hold: { gate: Promise<void>; arrived: () => void } | undefined;

  const fake: FakeRestMes = {
    url: '',
    clientId,
    clientSecret,
    orders: new Map(),
    recipes: new Map(),
    consumption: new Map(),
    applied: new Map(),
    statusRequests: 0,
    tokenRequests: 0,
    calls: 0,
    trace: [],
    unauthorized: 0,
    auth: opts.auth ?? { type: 'oauth2' },
    setMode: (m, scope = 'all', o) => {
      mode = m;
      modeScope = scope;
      fault = faultOptions(o);
      budget = new FaultBudget(fault.times);
      random = seeded(fault.seed ?? opts.seed ?? 7);
    },
    holdStatus: () => {
      let release!: () => void;
      let arrived!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const arrivedP = new Promise<void>((r) => (arrived = r));
      hold = { gate, arrived };
      return {
        arrived: arrivedP,
        release: () => {
          hold = undefined;
          release();
        },
      };
    },
    revokeTokens: () => tokens.clear(),
    close: () => closeServer(server),
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  /** Whether the request carries the credentials the fake accepts (OAuth2: a token it issued). */
  const authorised = (req: IncomingMessage, url: URL) => {
    const a = fake.auth;
    const header = req.headers.authorization ?? '';
    if (a.type === 'oauth2') return tokens.has(header.replace(/^Bearer /, ''));
    if (a.type === 'basic') return header === `Basic ${Buffer.from(`${a.user}:${a.password}`).toString('base64')}`;
    if (a.queryParam) return url.searchParams.get(a.queryParam) === a.key;
    return req.headers[(a.header ?? 'X-API-Key').toLowerCase()] === a.key;
  };

  const server = createServer(async (req, res) => {
    fake.calls++;
    const url = new URL(req.url ?? '/', 'http://fake');
    const body = await readBody(req);
    if (fake.auth.type === 'oauth2' && req.method === 'POST' && url.pathname === '/oauth/token') {
      fake.tokenRequests++;
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      const form = new URLSearchParams(body);
      if (basic !== `${clientId}:${clientSecret}` || form.get('grant_type') !== 'client_credentials')
        return json(res, 401, { error: 'invalid_client' });
      const t = randomUUID();
      tokens.add(t);
      return json(res, 200, { access_token: t, token_type: 'Bearer', expires_in: 3600 });
    }
    const key = req.headers['idempotency-key'];
    const call: FakeCall = {
      at: performance.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      ...(typeof key === 'string' ? { key } : {}),
    };
    fake.trace.push(call);
    res.on('finish', () => {
      call.answered = res.statusCode;
      call.answeredAt = performance.now();
    });
    if (!authorised(req, url)) {
      fake.unauthorized++;
      const challenge = fake.auth.type === 'basic' ? 'Basic realm="fake-mes"' : 'Bearer error="invalid_token"';
      return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge });
    }

    const isStatus = req.method === 'POST' && /\/status$/.test(url.pathname);
    const faulty = modeScope === 'all' || isStatus;
    if (faulty && mode === 'timeout') return; // never answers
    if (faulty && mode === '500') return json(res, 500, { error: 'internal', message: 'MES database unavailable' });
    if (faulty && mode === 'flaky30' && random() < 0.3) return json(res, 503, { error: 'unavailable' });
    if (faulty && mode === 'status' && budget.take())
      return json(
        res,
        fault.status ?? 503,
        { error: 'refused', message: `the fake answers ${fault.status}` },
        retryAfterHeader(fault),
      );
    const stall = faulty && mode === 'stallBody' && budget.take();
    /** The answer, or (stallBody) its first half and then silence. */
    const reply = (status: number, b: unknown, headers: Record<string, string> = {}) => {
      if (!stall) return json(res, status, b, headers);
      call.answered = 'stalled';
      call.answeredAt = performance.now();
      stallMidBody(res, status, { 'content-type': 'application/json', ...headers }, JSON.stringify(b));
    };

    if (req.method === 'GET' && url.pathname === '/schedules') {
      if (faulty && mode === 'malformed') return json(res, 200, '{"items": [{"OrderNumber": "WO-');
      // nextLink: everything the next page needs is in the opaque cursor; offset: in the query.
      const cursor = url.searchParams.get('cursor');
      const q = cursor
        ? (JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Record<string, string>)
        : Object.fromEntries(url.searchParams);
      const line = q.line;
      const from = Date.parse(q.from ?? '');
      const to = Date.parse(q.to ?? '');
      const limit = Number(q.limit ?? 100);
      let offset = opts.paging === 'nextLink' ? Number(cursor ? q.offset : 0) : Number(q.offset ?? 0);
      if (faulty && mode === 'repeatPage') offset = 0;
      const all = [...fake.orders.values()]
        .filter((o) => o.LineCode === line && Date.parse(o.PlannedEnd) > from && Date.parse(o.PlannedStart) < to)
        .sort((a, b) => a.OrderNumber.localeCompare(b.OrderNumber));
      const empty = faulty && mode === 'emptyPage' && offset > 0;
      const items = empty ? [] : all.slice(offset, offset + limit);
      const more = empty || (faulty && mode === 'repeatPage') || offset + items.length < all.length;
      if (opts.paging === 'nextLink') {
        const nextCursor = { line, from: q.from, to: q.to, limit: String(limit), offset: String(offset + limit) };
        const next = `${fake.url}/schedules?cursor=${Buffer.from(JSON.stringify(nextCursor)).toString('base64url')}`;
        return reply(200, { items, links: more ? { next } : {} });
      }
      return reply(200, { items, total: all.length, hasMore: more });
    }
    let m = /^\/work-orders\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const o = fake.orders.get(decodeURIComponent(m[1]!));
      return o ? reply(200, o) : json(res, 404, { error: 'not found' });
    }
    m = /^\/recipes\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const r = fake.recipes.get(decodeURIComponent(m[1]!));
      return r ? reply(200, r) : json(res, 404, { error: 'not found' });
    }
    m = /^\/work-orders\/([^/]+)\/consumption$/.exec(url.pathname);
    if (req.method === 'GET' && m) return reply(200, { items: fake.consumption.get(decodeURIComponent(m[1]!)) ?? [] });
    m = /^\/work-orders\/([^/]+)\/status$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      if (hold) {
        hold.arrived();
        await hold.gate;
      }
      fake.statusRequests++;
      if (typeof key !== 'string' || !key) return json(res, 400, { error: 'Idempotency-Key required' });
      const order = decodeURIComponent(m[1]!);
      if (!fake.orders.has(order)) return json(res, 404, { error: 'no such order' });
      const seen = fake.applied.get(key);
      if (seen) return reply(200, { applied: true }, { 'idempotent-replayed': 'true' });
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body);
      } catch {
        return json(res, 400, { error: 'body is not JSON' });
      }
      fake.applied.set(key, { order, body: parsed, count: 1 });
      const o = fake.orders.get(order)!;
      o.Status = String(parsed.status);
      o.ActualQuantity = Number(parsed.actualQuantity);
      if (faulty && mode === 'applyThenFail') return json(res, 500, { error: 'connection reset after commit' });
      return reply(200, { applied: true });
    }
    return json(res, 404, { error: 'no such resource' });
  });
  fake.url = await listenLocal(server);
  return fake;
}

/** `n` orders on a line, one hour each from `start`, products cycling through `products`. */
export function makeOrders(
  line: string,
  n: number,
  start: Date,
  products: string[],
  prefix = `${line}-WO`,
): MesOrder[] {
  return Array.from({ length: n }, (_, i) => ({
    OrderNumber: `${prefix}-${String(i + 1).padStart(6, '0')}`,
    LineCode: line,
    MaterialNumber: products[i % products.length]!,
    PlannedStart: new Date(start.getTime() + i * 3_600_000).toISOString(),
    PlannedEnd: new Date(start.getTime() + (i + 1) * 3_600_000).toISOString(),
    TargetQuantity: String(100 + (i % 50)),
    Status: 'RELEASED',
    Priority: 1 + (i % 10),
  }));
}
