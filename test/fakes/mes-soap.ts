import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as soap from 'soap';
import {
  FaultBudget,
  faultOptions,
  retryAfterHeader,
  seeded,
  type FakeCall,
  type FaultMode,
  type FaultOptions,
} from './fault.ts';
import { closeServer, stallMidBody } from './http-util.ts';

/**
 * An in-process SOAP MES speaking B2MML V0600 (reference/protocols.md §4), served by `soap.listen` from the WSDL
 * in test/fakes/wsdl/mes-b2mml.wsdl: GetProductionSchedule → ShowProductionSchedule (ProductionRequests with two
 * SegmentRequirements each, times in EarliestStartTime/LatestEndTime, the produced quantity in a
 * MaterialRequirement) and ProcessProductionPerformance → AcknowledgeProductionPerformance (applied once per
 * ProductionPerformance/ID). Answers use a `b2:` prefix and nested HierarchyScopes, as a real MES may.
 * HTTP Basic auth on every request, the WSDL included. The WSDL is served at `?wsdl` with its soap:address
 * pointing at this server.
 *
 * Fault modes (fault.ts) plus: `soapFault` a SOAP Client fault (the request is refused), `reject` an
 * Acknowledge whose ResponseExpression is Rejected. `500` answers a SOAP Server fault with HTTP 500; `status` answers
 * its status with a plain-text body (as the HTTP server in front of a SOAP service does); `stallBody` sends half of a
 * ShowProductionSchedule envelope and then nothing.
 */
export type SoapFaultMode = FaultMode | 'soapFault' | 'reject';
export const B2 = 'http://www.mesa.org/xml/B2MML-V0600';
export const WSDL_FILE = fileURLToPath(new URL('./wsdl/mes-b2mml.wsdl', import.meta.url));
const PATH = '/mes/b2mml';

export interface B2mmlOrder {
  id: string;
  /** HierarchyScope/EquipmentID of the line. */
  equipment: string;
  product: string | null;
  rule?: string | null;
  start: string;
  end: string;
  quantity: string;
  state: string;
  priority?: number;
}

export interface AppliedPerformance {
  order: string;
  state: string;
  quantity: number;
  actualStart: string | null;
  actualEnd: string | null;
  count: number;
}

export interface FakeSoapMes {
  url: string;
  wsdlUrl: string;
  user: string;
  password: string;
  orders: Map<string, B2mmlOrder>;
  /** Performances applied, by ProductionPerformance/ID (a resend of an ID is acknowledged, not applied again). */
  performances: Map<string, AppliedPerformance>;
  performanceRequests: number;
  scheduleRequests: number;
  wsdlRequests: number;
  calls: number;
  /** Answers the fault mode made (HTTP 500, 503, `status`, stalled, unanswered): how often it really failed a call. */
  injectedFaults: number;
  /** Every SOAP call (not the WSDL), in arrival order, with when it was answered. */
  trace: FakeCall[];
  /** What the last GetProductionSchedule selected, as the soap package parsed it. */
  lastSelection?: { equipment?: string; start?: string; end?: string; requestId?: string; sender?: string };
  /** `scope` 'performance': only ProcessProductionPerformance calls fail; a number as third argument is the seed. */
  setMode(mode: SoapFaultMode, scope?: 'all' | 'performance', opts?: number | FaultOptions): void;
  close(): Promise<void>;
}

// SOAP 1.1 over HTTP sends a Fault with status 500 (the soap package would send 200 without statusCode).
const fault = (code: 'soap:Client' | 'soap:Server', message: string) => ({
  Fault: { faultcode: code, faultstring: message, statusCode: 500 },
});

export async function startSoapMes(
  opts: { user?: string; password?: string; seed?: number } = {},
): Promise<FakeSoapMes> {
  const user = opts.user ?? 'HUB_SOAP';
  const password = opts.password ?? 'soap-password-1';
  const wsdl = readFileSync(WSDL_FILE, 'utf8');
  let mode: SoapFaultMode = 'ok';
  let scope: 'all' | 'performance' = 'all';
  let faultOpts: FaultOptions = {};
  let budget = new FaultBudget();
  let random = seeded(opts.seed ?? 13);

  const fake: FakeSoapMes = {
    url: '',
    wsdlUrl: '',
    user,
    password,
    orders: new Map(),
    performances: new Map(),
    performanceRequests: 0,
    scheduleRequests: 0,
    wsdlRequests: 0,
    calls: 0,
    injectedFaults: 0,
    trace: [],
    setMode: (m, s = 'all', o) => {
      mode = m;
      scope = s;
      faultOpts = faultOptions(o);
      budget = new FaultBudget(faultOpts.times);
      random = seeded(faultOpts.seed ?? opts.seed ?? 13);
    },
    close: () => closeServer(server),
  };
  const faulty = (op: 'schedule' | 'performance') => scope === 'all' || op === 'performance';

  const services = {
    B2mmlProductionService: {
      B2mmlProductionPort: {
        GetProductionSchedule(args: any) {
          fake.scheduleRequests++;
          if (faulty('schedule') && mode === 'soapFault')
            throw fault('soap:Client', 'GetProductionSchedule: HierarchyScope is not a known production line');
          const sel = args?.DataArea?.ProductionSchedule ?? {};
          const requestId = sel.ProductionRequest?.ID as string | undefined;
          fake.lastSelection = {
            equipment: sel.HierarchyScope?.EquipmentID,
            start: sel.StartTime,
            end: sel.EndTime,
            requestId,
            sender: args?.ApplicationArea?.Sender?.LogicalID,
          };
          const from = sel.StartTime ? Date.parse(sel.StartTime) : -Infinity;
          const to = sel.EndTime ? Date.parse(sel.EndTime) : Infinity;
          const picked = [...fake.orders.values()]
            .filter((o) => (requestId ? o.id === requestId : o.equipment === fake.lastSelection!.equipment))
            .filter((o) => Date.parse(o.end) > from && Date.parse(o.start) < to)
            .sort((a, b) => a.id.localeCompare(b.id));
          return { _xml: showSchedule(picked) };
        },
        ProcessProductionPerformance(args: any) {
          fake.performanceRequests++;
          if (faulty('performance') && mode === 'soapFault')
            throw fault('soap:Client', 'ProcessProductionPerformance: schema validation failed');
          const perf = args?.DataArea?.ProductionPerformance;
          const id = perf?.ID as string | undefined;
          const resp = perf?.ProductionResponse;
          if (!id || !resp?.ProductionRequestID)
            throw fault(
              'soap:Client',
              'ProductionPerformance needs an ID and a ProductionResponse/ProductionRequestID',
            );
          const order = fake.orders.get(String(resp.ProductionRequestID));
          if (!order) throw fault('soap:Client', `ProductionRequest ${resp.ProductionRequestID} is unknown`);
          if (faulty('performance') && mode === 'reject')
            return { _xml: acknowledge(id, 'Rejected', 'order is locked by the quality department') };
          if (!fake.performances.has(id)) {
            const qty = Number(resp.SegmentResponse?.MaterialActual?.Quantity?.QuantityString);
            fake.performances.set(id, {
              order: order.id,
              state: String(resp.ResponseState),
              quantity: qty,
              actualStart: resp.SegmentResponse?.ActualStartTime ?? null,
              actualEnd: resp.SegmentResponse?.ActualEndTime ?? null,
              count: 1,
            });
            order.state = String(resp.ResponseState);
            if (faulty('performance') && mode === 'applyThenFail')
              throw fault('soap:Server', 'connection to the MES database was reset after commit');
          }
          return { _xml: acknowledge(id, 'Accepted') };
        },
      },
    },
  };

  // soap.listen answers on a server of its own; the real one checks auth and injects faults first, then hands over.
  const soapSide = createServer();
  soap.listen(soapSide, PATH, services, wsdl);

  const server = createServer((req, res) => {
    fake.calls++;
    if (req.headers.authorization !== `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`)
      return send(res, 401, 'text/plain', 'Unauthorized');
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'GET' && url.pathname === PATH && url.searchParams.has('wsdl')) {
      fake.wsdlRequests++;
      return send(res, 200, 'text/xml', wsdl.replace(/location="[^"]*"/, `location="${fake.url}${PATH}"`));
    }
    const call: FakeCall = { at: performance.now(), method: req.method ?? 'POST', path: url.pathname };
    fake.trace.push(call);
    res.on('finish', () => {
      call.answered = res.statusCode;
      call.answeredAt = performance.now();
    });
    const op = String(req.headers.soapaction ?? '').includes('ProcessProductionPerformance')
      ? 'performance'
      : 'schedule';
    if (faulty(op) && mode === 'timeout') {
      fake.injectedFaults++;
      return; // never answers
    }
    if (faulty(op) && mode === '500') {
      fake.injectedFaults++;
      return send(res, 500, 'text/xml', serverFault('MES database unavailable'));
    }
    if (faulty(op) && mode === 'flaky30' && random() < 0.3) {
      fake.injectedFaults++;
      return send(res, 503, 'text/html', '<html><body>503 Service Unavailable</body></html>');
    }
    if (faulty(op) && mode === 'status' && budget.take()) {
      fake.injectedFaults++;
      const status = faultOpts.status ?? 503;
      const headers: Record<string, string> = retryAfterHeader(faultOpts);
      return send(res, status, 'text/plain', `${status} from the fake's HTTP front end`, headers);
    }
    if (faulty(op) && mode === 'stallBody' && budget.take()) {
      fake.injectedFaults++;
      call.answered = 'stalled';
      call.answeredAt = performance.now();
      return stallMidBody(
        res,
        200,
        { 'content-type': 'text/xml; charset=utf-8' },
        envelope(showSchedule([...fake.orders.values()])),
      );
    }
    if (faulty(op) && mode === 'malformed')
      return send(
        res,
        200,
        'text/xml',
        `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
          `<b2:ShowProductionSchedule xmlns:b2="${B2}"><b2:DataArea><b2:ProductionSch`,
      );
    soapSide.emit('request', req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.wsdlUrl = `${fake.url}${PATH}?wsdl`;
  return fake;
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

const x = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);

function serverFault(message: string): string {
  return (
    `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` +
    `<soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>${x(message)}</faultstring>` +
    `</soap:Fault></soap:Body></soap:Envelope>`
  );
}

function envelope(body: string): string {
  return (
    `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` +
    `<soap:Body>${body}</soap:Body></soap:Envelope>`
  );
}

function scope(equipment: string): string {
  return (
    `<b2:HierarchyScope><b2:EquipmentID>PLANT-1</b2:EquipmentID>` +
    `<b2:EquipmentElementLevel>Site</b2:EquipmentElementLevel><b2:HierarchyScope><b2:EquipmentID>` +
    `${x(equipment)}</b2:EquipmentID><b2:EquipmentElementLevel>ProductionLine</b2:EquipmentElementLevel>` +
    `</b2:HierarchyScope></b2:HierarchyScope>`
  );
}

/** A ShowProductionSchedule: each order as a ProductionRequest with a preparation and a production segment. */
function showSchedule(orders: B2mmlOrder[]): string {
  const requests = orders.map((o) => {
    const mid = new Date((Date.parse(o.start) + Date.parse(o.end)) / 2).toISOString();
    const produced = o.product
      ? `<b2:MaterialRequirement><b2:MaterialDefinitionID>${x(o.product)}</b2:MaterialDefinitionID>` +
        `<b2:MaterialUse>Produced</b2:MaterialUse><b2:Quantity><b2:QuantityString>` +
        `${x(o.quantity)}</b2:QuantityString><b2:UnitOfMeasure>PC</b2:UnitOfMeasure></b2:Quantity>` +
        `</b2:MaterialRequirement>`
      : '';
    return (
      `<b2:ProductionRequest><b2:ID>${x(o.id)}</b2:ID>` +
      (o.rule ? `<b2:ProductProductionRuleID>${x(o.rule)}</b2:ProductProductionRuleID>` : '') +
      scope(o.equipment) +
      (o.priority !== undefined ? `<b2:Priority>${o.priority}</b2:Priority>` : '') +
      `<b2:SegmentRequirement><b2:ID>0010</b2:ID><b2:ProcessSegmentID>SETUP</b2:ProcessSegmentID>` +
      `<b2:EarliestStartTime>${o.start}</b2:EarliestStartTime><b2:LatestEndTime>${mid}</b2:LatestEndTime>` +
      `<b2:MaterialRequirement><b2:MaterialDefinitionID>RESIN-PP</b2:MaterialDefinitionID>` +
      `<b2:MaterialUse>Consumed</b2:MaterialUse><b2:Quantity><b2:QuantityString>12.5</b2:QuantityString>` +
      `<b2:UnitOfMeasure>KG</b2:UnitOfMeasure></b2:Quantity></b2:MaterialRequirement></b2:SegmentRequirement>` +
      `<b2:SegmentRequirement><b2:ID>0020</b2:ID><b2:ProcessSegmentID>MOULDING</b2:ProcessSegmentID>` +
      `<b2:EarliestStartTime>${mid}</b2:EarliestStartTime><b2:LatestEndTime>${o.end}</b2:LatestEndTime>` +
      `${produced}</b2:SegmentRequirement>` +
      `<b2:RequestState>${x(o.state)}</b2:RequestState></b2:ProductionRequest>`
    );
  });
  return (
    `<b2:ShowProductionSchedule xmlns:b2="${B2}" releaseID="6.0"><b2:ApplicationArea><b2:Sender>` +
    `<b2:LogicalID>FAKE-MES</b2:LogicalID></b2:Sender><b2:CreationDateTime>` +
    `${new Date().toISOString()}</b2:CreationDateTime></b2:ApplicationArea>` +
    `<b2:DataArea><b2:Show/><b2:ProductionSchedule><b2:ID>PS-${Date.now()}</b2:ID><b2:PublishedDate>` +
    `${new Date().toISOString()}</b2:PublishedDate>${requests.join('')}</b2:ProductionSchedule></b2:DataArea>` +
    `</b2:ShowProductionSchedule>`
  );
}

function acknowledge(id: string, action: 'Accepted' | 'Rejected', reason?: string): string {
  const status = reason ? `<b2:ChangeStatus><b2:Description>${x(reason)}</b2:Description></b2:ChangeStatus>` : '';
  return (
    `<b2:AcknowledgeProductionPerformance xmlns:b2="${B2}" releaseID="6.0"><b2:ApplicationArea><b2:Sender>` +
    `<b2:LogicalID>FAKE-MES</b2:LogicalID></b2:Sender><b2:CreationDateTime>` +
    `${new Date().toISOString()}</b2:CreationDateTime></b2:ApplicationArea>` +
    `<b2:DataArea><b2:Acknowledge><b2:ResponseCriteria><b2:ResponseExpression actionCode="${action}"/>` +
    `${status}</b2:ResponseCriteria></b2:Acknowledge><b2:ProductionPerformance><b2:ID>${x(id)}</b2:ID>` +
    `</b2:ProductionPerformance></b2:DataArea></b2:AcknowledgeProductionPerformance>`
  );
}

/** `n` orders on a line's equipment id, one hour each from `start`, products cycling through `products`. */
export function makeB2mmlOrders(
  equipment: string,
  n: number,
  start: Date,
  products: string[],
  prefix = `${equipment}-PR`,
): B2mmlOrder[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${String(i + 1).padStart(6, '0')}`,
    equipment,
    product: products[i % products.length]!,
    rule: `RULE-${products[i % products.length]}`,
    start: new Date(start.getTime() + i * 3_600_000).toISOString(),
    end: new Date(start.getTime() + (i + 1) * 3_600_000).toISOString(),
    quantity: String(100 + (i % 50)),
    state: 'Released',
    priority: 1 + (i % 10),
  }));
}
