import { createServer, type ServerResponse } from 'node:http';
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
 * An in-process SAP Gateway speaking OData V2 verbose JSON (reference/protocols.md §3): API_PRODUCTION_ORDER_2_SRV
 * (A_ProductionOrder_2 with $filter on plant, line field and planned dates, $top/$skip, and a server page cap
 * answered with d.__next $skiptoken like RAP services), API_PRODUCT_SRV (A_Product with to_Description), and
 * API_MATERIAL_DOCUMENT_SRV (goods issues: POST needs the CSRF token and its session cookie). HTTP Basic auth.
 * Errors use SAP's error body. Fault modes: fault.ts (`status` answers SAP's error body with that status;
 * `stallBody` cuts an A_ProductionOrder_2 page).
 */
export interface FakeSap {
  url: string;
  user: string;
  password: string;
  orders: Map<string, Record<string, unknown>>;
  products: Map<string, Record<string, unknown>>;
  documents: Record<string, unknown>[];
  /** Production order confirmations (ProdnOrdConf2 of API_PROD_ORDER_CONFIRMATION_2_SRV), by group/count. */
  confirmations: Map<string, Record<string, unknown>>;
  /** Rows the server puts on one page at most (then __next). */
  serverPageCap: number;
  csrfFetches: number;
  posts: number;
  calls: number;
  /** Every request, in arrival order, with when it was answered. */
  trace: FakeCall[];
  /** A number is the flaky mode's seed (older callers). */
  setMode(mode: FaultMode, opts?: number | FaultOptions): void;
  /** Goods issues of these materials are refused with SAP's error body (HTTP 400), e.g. a stock deficit. */
  refusedMaterials: Map<string, { code: string; message: string }>;
  /** The current CSRF token stops being valid (as when its session ends): the next POST gets 403 Required. */
  expireCsrf(): void;
  close(): Promise<void>;
}

const ORDERS = '/sap/opu/odata/sap/API_PRODUCTION_ORDER_2_SRV';
const PRODUCTS = '/sap/opu/odata/sap/API_PRODUCT_SRV';
const MATDOC = '/sap/opu/odata/sap/API_MATERIAL_DOCUMENT_SRV';
const CONF = '/sap/opu/odata/sap/API_PROD_ORDER_CONFIRMATION_2_SRV';

const sapError = (code: string, message: string) => ({
  error: {
    code,
    message: { lang: 'en', value: message },
    innererror: {
      transactionid: randomUUID().replace(/-/g, '').toUpperCase(),
      timestamp: '20300101000000.0000000',
      errordetails: [{ code, message, propertyref: '', severity: 'error', target: '', transition: false }],
    },
  },
});

export async function startSap(
  opts: { user?: string; password?: string; serverPageCap?: number } = {},
): Promise<FakeSap> {
  const user = opts.user ?? 'HUB_COMM_USER';
  const password = opts.password ?? 'sap-password-1';
  let mode: FaultMode = 'ok';
  let fault: FaultOptions = {};
  let budget = new FaultBudget();
  let random = seeded(5);
  let csrf = randomUUID();
  const session = `SAP_SESSIONID_S4H_100=${randomUUID()}`;
  const fake: FakeSap = {
    url: '',
    user,
    password,
    orders: new Map(),
    products: new Map(),
    documents: [],
    confirmations: new Map(),
    refusedMaterials: new Map(),
    serverPageCap: opts.serverPageCap ?? 5000,
    csrfFetches: 0,
    posts: 0,
    calls: 0,
    trace: [],
    setMode: (m, o) => {
      mode = m;
      fault = faultOptions(o);
      budget = new FaultBudget(fault.times);
      random = seeded(fault.seed ?? 5);
    },
    expireCsrf: () => {
      csrf = randomUUID();
    },
    close: () => closeServer(server),
  };
  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string | string[]> = {},
  ) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const server = createServer(async (req, res) => {
    fake.calls++;
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', fake.url || 'http://fake');
    const call: FakeCall = { at: performance.now(), method: req.method ?? 'GET', path: url.pathname };
    fake.trace.push(call);
    res.on('finish', () => {
      call.answered = res.statusCode;
      call.answeredAt = performance.now();
    });
    if (req.headers.authorization !== `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`)
      return send(res, 401, sapError('/IWFND/CM_AUTH/000', 'Unauthorized'));
    if (mode === 'timeout') return;
    if (mode === 'status' && budget.take())
      return send(
        res,
        fault.status ?? 503,
        sapError('/IWFND/CM_BEC/026', `the fake answers ${fault.status}`),
        retryAfterHeader(fault),
      );
    const stall = mode === 'stallBody' && budget.take();
    if (mode === '500') return send(res, 500, sapError('/IWBEP/CM_MGW_RT/000', 'Runtime error in the backend'));
    if (mode === 'flaky30' && random() < 0.3)
      return send(res, 503, sapError('/IWFND/CM_BEC/026', 'Service unavailable'));

    if (req.method === 'GET' && req.headers['x-csrf-token'] === 'Fetch') {
      fake.csrfFetches++;
      return send(
        res,
        200,
        { d: { EntitySets: [] } },
        { 'x-csrf-token': csrf, 'set-cookie': [`${session}; path=/; HttpOnly`, `sap-XSRF_S4H_100=${csrf}; path=/`] },
      );
    }
    if (req.method === 'GET' && url.pathname === `${ORDERS}/A_ProductionOrder_2`) {
      if (mode === 'malformed') return send(res, 200, '{"d":{"results":[{"ManufacturingOrder":"10');
      const filter = url.searchParams.get('$filter') ?? '';
      const plant = /ProductionPlant eq '([^']*)'/.exec(filter)?.[1];
      const lines = [...filter.matchAll(/ProductionSupervisor eq '([^']*)'/g)].map((m) => m[1]);
      const lt = /MfgOrderPlannedStartDate lt datetime'([^']*)'/.exec(filter)?.[1];
      const ge = /MfgOrderPlannedEndDate ge datetime'([^']*)'/.exec(filter)?.[1];
      const ms = (v: unknown) => Number(/\/Date\((\d+)/.exec(String(v))?.[1]);
      const all = [...fake.orders.values()]
        .filter(
          (o) =>
            (!plant || o.ProductionPlant === plant) &&
            (!lines.length || lines.includes(String(o.ProductionSupervisor))),
        )
        .filter(
          (o) =>
            (!lt || ms(o.MfgOrderPlannedStartDate) < Date.parse(`${lt}Z`)) &&
            (!ge || ms(o.MfgOrderPlannedEndDate) >= Date.parse(`${ge}Z`)),
        )
        .sort((a, b) => String(a.ManufacturingOrder).localeCompare(String(b.ManufacturingOrder)));
      const skip = Number(url.searchParams.get('$skiptoken') ?? url.searchParams.get('$skip') ?? 0);
      const top = Math.min(Number(url.searchParams.get('$top') ?? 100), fake.serverPageCap);
      const start = mode === 'repeatPage' ? 0 : skip;
      if (mode === 'emptyPage' && skip > 0)
        return send(res, 200, { d: { results: [], __next: `${fake.url}${url.pathname}?$skiptoken=${skip + 1}` } });
      const page = all.slice(start, start + top).map((o) => ({
        __metadata: {
          id: `${fake.url}${ORDERS}/A_ProductionOrder_2('${o.ManufacturingOrder}')`,
          uri: `${fake.url}${ORDERS}/A_ProductionOrder_2('${o.ManufacturingOrder}')`,
          type: 'API_PRODUCTION_ORDER_2_SRV.A_ProductionOrder_2Type',
        },
        ...o,
      }));
      const requested = Number(url.searchParams.get('$top') ?? 100);
      // The server capped the page below what was asked: it says how to go on (like RAP services).
      const capped = requested > fake.serverPageCap && skip + page.length < all.length;
      const next =
        capped || mode === 'repeatPage'
          ? `${fake.url}${url.pathname}?$filter=${encodeURIComponent(filter)}&$top=${requested}&$skiptoken=` +
            `${mode === 'repeatPage' ? skip + top : skip + page.length}`
          : undefined;
      const answer = { d: { results: page, __count: String(all.length), ...(next ? { __next: next } : {}) } };
      if (stall) {
        call.answered = 'stalled';
        call.answeredAt = performance.now();
        return stallMidBody(res, 200, { 'content-type': 'application/json' }, JSON.stringify(answer));
      }
      return send(res, 200, answer);
    }
    if (req.method === 'GET' && url.pathname === `${CONF}/ProdnOrdConf2`) {
      // $filter on the execution start (datetime literals) and IsReversed; pages capped like the orders, with __next.
      const filter = url.searchParams.get('$filter') ?? '';
      const ge = /ConfirmedExecutionStartDate ge datetime'([^']*)'/.exec(filter)?.[1];
      const lt = /ConfirmedExecutionStartDate lt datetime'([^']*)'/.exec(filter)?.[1];
      const notReversed = /IsReversed eq false/.test(filter);
      const ms = (v: unknown) => Number(/\/Date\((\d+)/.exec(String(v))?.[1]);
      const all = [...fake.confirmations.values()]
        .filter(
          (c) =>
            (!ge || ms(c.ConfirmedExecutionStartDate) >= Date.parse(`${ge}Z`)) &&
            (!lt || ms(c.ConfirmedExecutionStartDate) < Date.parse(`${lt}Z`)) &&
            (!notReversed || c.IsReversed === false),
        )
        .sort((a, b) =>
          `${a.ConfirmationGroup}/${a.ConfirmationCount}`.localeCompare(
            `${b.ConfirmationGroup}/${b.ConfirmationCount}`,
          ),
        );
      const skip = Number(url.searchParams.get('$skiptoken') ?? url.searchParams.get('$skip') ?? 0);
      const requested = Number(url.searchParams.get('$top') ?? 100);
      const page = all.slice(skip, skip + Math.min(requested, fake.serverPageCap)).map((c) => {
        const uri =
          `${fake.url}${CONF}/ProdnOrdConf2(ConfirmationGroup='${c.ConfirmationGroup}',ConfirmationCount='` +
          `${c.ConfirmationCount}')`;
        return { __metadata: { id: uri, uri, type: 'API_PROD_ORDER_CONFIRMATION_2_SRV.A_ProdnOrdConf2Type' }, ...c };
      });
      const more = requested > fake.serverPageCap && skip + page.length < all.length;
      const next = more
        ? `${fake.url}${url.pathname}?$filter=${encodeURIComponent(filter)}&$top=${requested}&$skiptoken=` +
          `${skip + page.length}`
        : undefined;
      return send(res, 200, { d: { results: page, __count: String(all.length), ...(next ? { __next: next } : {}) } });
    }
    if (req.method === 'GET' && url.pathname === `${PRODUCTS}/A_Product`) {
      const skip = Number(url.searchParams.get('$skip') ?? 0);
      const top = Number(url.searchParams.get('$top') ?? 100);
      const all = [...fake.products.values()].sort((a, b) => String(a.Product).localeCompare(String(b.Product)));
      return send(res, 200, { d: { results: all.slice(skip, skip + top) } });
    }
    if (req.method === 'GET' && url.pathname === `${MATDOC}/A_MaterialDocumentItem`) {
      const order = /ManufacturingOrder eq '([^']*)'/.exec(url.searchParams.get('$filter') ?? '')?.[1];
      return send(res, 200, { d: { results: fake.documents.filter((d) => d.ManufacturingOrder === order) } });
    }
    if (req.method === 'POST' && url.pathname === `${MATDOC}/A_MaterialDocumentHeader`) {
      fake.posts++;
      if (req.headers['x-csrf-token'] !== csrf || !String(req.headers.cookie ?? '').includes(session)) {
        return send(res, 403, 'CSRF token validation failed', {
          'x-csrf-token': 'Required',
          'content-type': 'text/plain',
        });
      }
      const doc = JSON.parse(body) as {
        PostingDate: string;
        to_MaterialDocumentItem: { results: Record<string, unknown>[] };
      };
      const refused = doc.to_MaterialDocumentItem.results
        .map((it) => fake.refusedMaterials.get(String(it.Material)))
        .find(Boolean);
      if (refused) return send(res, 400, sapError(refused.code, refused.message));
      const number = String(4900000000 + fake.documents.length);
      doc.to_MaterialDocumentItem.results.forEach((it, i) => {
        fake.documents.push({
          MaterialDocumentYear: '2030',
          MaterialDocument: number,
          MaterialDocumentItem: String(i + 1),
          PostingDate: doc.PostingDate,
          ...it,
        });
      });
      return send(res, 201, { d: { MaterialDocumentYear: '2030', MaterialDocument: number } });
    }
    return send(res, 404, sapError('/IWBEP/CM_MGW_RT/020', `Resource not found for segment '${url.pathname}'`));
  });
  fake.url = await listenLocal(server);
  return fake;
}

const DAY = 86_400_000;
/** `n` production orders for a line value, a day each from `start` (a midnight), in A_ProductionOrder_2's shape. */
export function makeSapOrders(
  lineValue: string,
  n: number,
  start: Date,
  material = 'FG-PUMP-10',
  prefix = 1_000_000,
): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    ManufacturingOrder: String(prefix + i),
    ManufacturingOrderType: 'YBM1',
    Material: material,
    ProductionPlant: '1710',
    ProductionSupervisor: lineValue,
    MfgOrderPlannedStartDate: `/Date(${start.getTime() + (i % 20) * DAY})/`,
    MfgOrderPlannedStartTime: 'PT06H00M00S',
    MfgOrderPlannedEndDate: `/Date(${start.getTime() + (i % 20) * DAY})/`,
    MfgOrderPlannedEndTime: 'PT14H00M00S',
    TotalQuantity: `${480 + (i % 7)}.000`,
    ProductionUnit: 'PC',
    MfgOrderConfirmedYieldQty: '0',
    OrderIsReleased: 'X',
    OrderIsConfirmed: '',
    to_ProductionOrderOperation: {
      __deferred: {
        uri: `https://s4.example${ORDERS}/A_ProductionOrder_2('${prefix + i}')/to_ProductionOrderOperation`,
      },
    },
  }));
}

/**
 * `n` confirmations of operations at a work centre, one a day from `start` (a midnight), in ProdnOrdConf2's shape:
 * keys and quantities as strings (Edm.String / Edm.Decimal), dates as /Date(ms)/, times as Edm.Time.
 */
export function makeConfirmations(
  workCenter: string,
  n: number,
  start: Date,
  opts: { group?: number; unit?: string; hours?: number; order?: string } = {},
): Record<string, unknown>[] {
  const group = opts.group ?? 50_000;
  return Array.from({ length: n }, (_, i) => ({
    ConfirmationGroup: String(group + i),
    ConfirmationCount: '1',
    OrderID: opts.order ?? String(1_000_000 + i),
    Operation: '0010',
    WorkCenter: workCenter,
    Plant: '1710',
    ConfirmedExecutionStartDate: `/Date(${start.getTime() + (i % 20) * DAY})/`,
    ConfirmedExecutionStartTime: 'PT06H00M00S',
    ConfirmedExecutionEndDate: `/Date(${start.getTime() + (i % 20) * DAY})/`,
    ConfirmedExecutionEndTime: 'PT14H00M00S',
    ConfirmationYieldQuantity: '480.000',
    ConfirmationUnit: 'PC',
    OpConfirmedWorkQuantity1: (opts.hours ?? 7.5).toFixed(3),
    OpWorkQuantityUnit1: opts.unit ?? 'H',
    IsReversed: false,
    IsFinalConfirmation: false,
  }));
}
