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
 * An in-process Oracle Fusion Cloud SCM REST API (reference/protocols.md §3): GET
 * /fscmRestApi/resources/11.13.18.05/workOrders with a `q` row-match expression (OrganizationCode, the line field,
 * PlannedStartDate/PlannedCompletionDate comparisons), `limit`/`offset` paging (the server caps `limit` at 500)
 * and the collection envelope `{ items, count, hasMore, limit, offset, links }`. OAuth2 client credentials
 * (POST /oauth2/v1/token) or HTTP Basic. Errors in Oracle's error body (`title`, `detail`, `o:errorCode`).
 * Fault modes: fault.ts (`status` answers Oracle's error body with that status; `stallBody` cuts a workOrders page).
 */
export interface FakeOracle {
  url: string;
  clientId: string;
  clientSecret: string;
  user: string;
  password: string;
  workOrders: Map<string, Record<string, unknown>>;
  /** The `q` expressions received, in order. */
  queries: string[];
  /** Headers of the last workOrders call (REST-Framework-Version is checked). */
  lastHeaders?: IncomingMessage['headers'];
  tokenRequests: number;
  calls: number;
  /** Every request but token requests, in arrival order, with when it was answered. */
  trace: FakeCall[];
  /** Requests refused with 401 (no or wrong credentials). */
  unauthorized: number;
  /** A number is the flaky mode's seed (older callers). */
  setMode(mode: FaultMode, opts?: number | FaultOptions): void;
  revokeTokens(): void;
  close(): Promise<void>;
}

const PATH = '/fscmRestApi/resources/11.13.18.05/workOrders';

export async function startOracle(opts: { seed?: number } = {}): Promise<FakeOracle> {
  const tokens = new Set<string>();
  let mode: FaultMode = 'ok';
  let fault: FaultOptions = {};
  let budget = new FaultBudget();
  let random = seeded(opts.seed ?? 17);
  const fake: FakeOracle = {
    url: '',
    clientId: 'hub-oracle-client',
    clientSecret: 'oracle-secret-1',
    user: 'HUB.INTEGRATION',
    password: 'oracle-password-1',
    workOrders: new Map(),
    queries: [],
    tokenRequests: 0,
    calls: 0,
    trace: [],
    unauthorized: 0,
    setMode: (m, o) => {
      mode = m;
      fault = faultOptions(o);
      budget = new FaultBudget(fault.times);
      random = seeded(fault.seed ?? opts.seed ?? 17);
    },
    revokeTokens: () => tokens.clear(),
    close: () => closeServer(server),
  };
  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    type = 'application/json',
    headers: Record<string, string> = {},
  ) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const oracleError = (status: number, title: string, detail: string, code: string) => ({
    type: 'http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html',
    title,
    status: String(status),
    'o:errorDetails': [{ detail, 'o:errorCode': code }],
  });

  const server = createServer(async (req, res) => {
    fake.calls++;
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'POST' && url.pathname === '/oauth2/v1/token') {
      fake.tokenRequests++;
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      if (
        basic !== `${fake.clientId}:${fake.clientSecret}` ||
        new URLSearchParams(body).get('grant_type') !== 'client_credentials'
      )
        return send(res, 401, { error: 'invalid_client' });
      const t = randomUUID();
      tokens.add(t);
      return send(res, 200, { access_token: t, token_type: 'Bearer', expires_in: 3600 });
    }
    const call: FakeCall = { at: performance.now(), method: req.method ?? 'GET', path: url.pathname };
    fake.trace.push(call);
    res.on('finish', () => {
      call.answered = res.statusCode;
      call.answeredAt = performance.now();
    });
    const auth = req.headers.authorization ?? '';
    const ok = auth.startsWith('Bearer ')
      ? tokens.has(auth.slice(7))
      : auth === `Basic ${Buffer.from(`${fake.user}:${fake.password}`).toString('base64')}`;
    if (!ok) {
      fake.unauthorized++;
      return send(res, 401, 'Unauthorized', 'text/plain');
    }
    if (mode === 'timeout') return;
    if (mode === 'status' && budget.take()) {
      const s = fault.status ?? 503;
      return send(
        res,
        s,
        oracleError(s, 'Service Unavailable', `the fake answers ${s}`, `FAKE-${s}`),
        'application/json',
        retryAfterHeader(fault),
      );
    }
    const stall = mode === 'stallBody' && budget.take();
    if (mode === '500')
      return send(
        res,
        500,
        oracleError(
          500,
          'Internal Server Error',
          'JBO-29000: Unexpected exception caught: java.sql.SQLException',
          'JBO-29000',
        ),
      );
    if (mode === 'flaky30' && random() < 0.3) return send(res, 503, 'Service Unavailable', 'text/html');
    if (req.method !== 'GET' || url.pathname !== PATH)
      return send(res, 404, oracleError(404, 'Not Found', `resource ${url.pathname} not found`, 'NOT_FOUND'));
    if (mode === 'malformed') return send(res, 200, '{"items":[{"WorkOrderId":3001,"WorkOrderNumber":"M1-');
    fake.lastHeaders = req.headers;
    const q = url.searchParams.get('q') ?? '';
    fake.queries.push(q);
    const filter = parseQ(q);
    if (!filter)
      return send(
        res,
        400,
        oracleError(400, 'Bad Request', `URL request parameter q with value ${q} is not valid`, 'RFW-Q-PARSE'),
      );
    const all = [...fake.workOrders.values()]
      .filter(filter)
      .sort((a, b) => String(a.WorkOrderNumber).localeCompare(String(b.WorkOrderNumber)));
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 25), 500);
    const offset = mode === 'repeatPage' ? 0 : Number(url.searchParams.get('offset') ?? 0);
    if (mode === 'emptyPage' && offset > 0)
      return send(res, 200, { items: [], count: 0, hasMore: true, limit, offset, links: [] });
    const items = all.slice(offset, offset + limit);
    const hasMore = mode === 'repeatPage' ? true : offset + items.length < all.length;
    const page = {
      items,
      count: items.length,
      hasMore,
      limit,
      offset,
      links: [{ rel: 'self', href: `${fake.url}${PATH}`, name: 'workOrders', kind: 'collection' }],
    };
    if (stall) {
      call.answered = 'stalled';
      call.answeredAt = performance.now();
      return stallMidBody(res, 200, { 'content-type': 'application/json' }, JSON.stringify(page));
    }
    return send(res, 200, page);
  });
  fake.url = await listenLocal(server);
  return fake;
}

/**
 * The row-match expressions the connector sends: `A='v'`, `(A='v' or A='w')`, `A<'iso'`, `A>'iso'` joined by
 * ` and `. Anything else is refused as Oracle would (400), so a connector writing another syntax fails the tests.
 */
function parseQ(q: string): ((r: Record<string, unknown>) => boolean) | undefined {
  const parts = q.split(' and ');
  const tests: ((r: Record<string, unknown>) => boolean)[] = [];
  for (const p of parts) {
    const alt = /^\((.+)\)$/.exec(p);
    const terms = (alt ? alt[1]!.split(' or ') : [p]).map((t) => /^(\w+)(=|<|>)'((?:[^']|'')*)'$/.exec(t));
    if (terms.some((t) => !t)) return undefined;
    tests.push((r) =>
      terms.some((t) => {
        const [, field, op, raw] = t!;
        const v = raw!.replace(/''/g, "'");
        const have = r[field!];
        if (op === '=') return String(have) === v;
        const a = Date.parse(String(have));
        return op === '<' ? a < Date.parse(v) : a > Date.parse(v);
      }),
    );
  }
  return (r) => tests.every((t) => t(r));
}

/** `n` released work orders in organization M1 on a work area, 8 hours each from `start`. */
export function makeOracleWorkOrders(
  workArea: string,
  n: number,
  start: Date,
  item = 'AS54888',
  firstId = 300100071643547,
): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    WorkOrderId: firstId + i,
    WorkOrderNumber: `M1-${workArea}-${String(i + 1).padStart(5, '0')}`,
    OrganizationCode: 'M1',
    WorkAreaCode: workArea,
    ItemNumber: item,
    PlannedStartQuantity: 40 + (i % 9),
    CompletedQuantity: 0,
    UOMCode: 'Ea',
    PlannedStartDate: new Date(start.getTime() + i * 8 * 3_600_000).toISOString().replace('.000Z', '+00:00'),
    PlannedCompletionDate: new Date(start.getTime() + (i + 1) * 8 * 3_600_000).toISOString().replace('.000Z', '+00:00'),
    ActualStartDate: null,
    ActualCompletionDate: null,
    WorkOrderStatusCode: 'ORA_RELEASED',
    WorkOrderSystemStatusCode: 'RELEASED',
    WorkOrderPriority: null,
  }));
}
