import { randomUUID } from 'node:crypto';
import * as soap from 'soap';
import type { MesConfig, MesSoapConfig } from '../../config/mes.ts';
import { valuesMappedTo } from '../../config/connection.ts';
import { badResponse, notSupported, unavailable, UpstreamError } from '../errors.ts';
import { UpstreamClient } from '../http.ts';
import { RecordProblem } from '../values.ts';
import {
  buildGetProductionSchedule,
  buildProcessProductionPerformance,
  mapScheduleAnswer,
  readAcknowledge,
  type RequestContext,
} from './b2mml.ts';
import { mesStatus } from './mapping.ts';
import { describeSoapFault, SoapTransport } from './soap-transport.ts';
import type {
  ConsumptionRecord,
  MesConnector,
  MesRecipe,
  OrderStatusUpdate,
  RecordPage,
  ScheduleRecord,
} from './types.ts';

type SoapCall = (args: unknown, options?: unknown) => Promise<[unknown, string, unknown, string]>;

/**
 * A MES that speaks B2MML V0600 over SOAP, driven by its WSDL (the `soap` package): schedules are
 * GetProductionSchedule → ShowProductionSchedule, order status reports are ProcessProductionPerformance →
 * AcknowledgeProductionPerformance. The soap package builds the envelope and checks the operation against the WSDL;
 * the B2MML inside is written and read here (b2mml.ts) from the raw XML, namespace-aware. Every HTTP exchange,
 * the WSDL fetch included, goes through UpstreamClient (SoapTransport). The WSDL is read on first use, not at
 * start, so a MES that is down does not keep the hub from starting; a failed read is tried again next call.
 */
export class SoapMesConnector implements MesConnector {
  readonly system: string;
  readonly http: UpstreamClient;
  private readonly soapCfg: MesSoapConfig;
  private client?: Promise<soap.Client>;

  constructor(private readonly cfg: MesConfig) {
    this.system = cfg.name;
    this.http = new UpstreamClient(cfg.name, cfg.connection);
    this.soapCfg = cfg.soap!;
  }

  private soapClient(): Promise<soap.Client> {
    this.client ??= this.open().catch((e) => {
      this.client = undefined;
      throw e;
    });
    return this.client;
  }

  private async open(): Promise<soap.Client> {
    let c: soap.Client;
    try {
      c = await soap.createClientAsync(this.soapCfg.wsdl, {
        httpClient: new SoapTransport(this.http),
        disableCache: true,
        endpoint: this.soapCfg.endpoint,
      });
    } catch (e) {
      if (e instanceof UpstreamError) throw e;
      throw badResponse(this.system, `the WSDL could not be read: ${(e as Error).message}`, {}, e);
    }
    for (const op of Object.values(this.soapCfg.operations)) {
      if (typeof (c as unknown as Record<string, unknown>)[`${op}Async`] !== 'function')
        throw badResponse(this.system, `the WSDL has no operation ${op} (mes.yml soap.operations)`);
    }
    return c;
  }

  /** One operation with a B2MML body; resolves with the raw answer. Both operations are safe to resend (see below). */
  private async call(op: string, body: string): Promise<string> {
    const c = (await this.soapClient()) as unknown as Record<string, SoapCall>;
    try {
      const [, raw] = await c[`${op}Async`]!({ _xml: body }, { idempotent: true });
      return String(raw ?? '');
    } catch (e) {
      if (e instanceof UpstreamError) throw e;
      // The soap package's own parse failed: a Fault sent with status 200 (not SOAP 1.1 over HTTP, but seen), or
      // a body that is not a SOAP envelope.
      const f =
        typeof (e as { body?: unknown })?.body === 'string'
          ? describeSoapFault((e as { body: string }).body)
          : undefined;
      if (f)
        throw (f.retryable ? unavailable : badResponse)(
          this.system,
          `${op} answered ${f.message}`,
          { upstreamCode: f.upstreamCode, rejected: f.retryable === false },
          e,
        );
      throw badResponse(
        this.system,
        `${op} answered a body we cannot use: ${soapParseProblem(e).slice(0, 300)}`,
        {},
        e,
      );
    }
  }

  /** Our line id → the MES equipment ids that map to it (soap.lineMap), or the id itself. */
  private lineValues(lineId: string): string[] {
    const v = valuesMappedTo(this.soapCfg.lineMap, lineId);
    return v.length ? v : [lineId];
  }

  private context(lineId: string | null): RequestContext {
    return { lineId, lineMap: this.soapCfg.lineMap, statusMap: this.cfg.statusMap };
  }

  private read(answer: string, ctx: RequestContext) {
    try {
      return mapScheduleAnswer(answer, ctx);
    } catch (e) {
      if (e instanceof RecordProblem) throw badResponse(this.system, `ShowProductionSchedule: ${e.message}`);
      throw e;
    }
  }

  private query(lineValue?: string, from?: Date, to?: Date, workOrderNumber?: string): string {
    return buildGetProductionSchedule({
      lineValue,
      from,
      to,
      workOrderNumber,
      sender: this.soapCfg.senderId,
      messageId: randomUUID(),
      createdAt: new Date(),
    });
  }

  /**
   * One answer per MES equipment id of the line; orders outside [from, to) are left out (a MES may ignore the window).
   */
  async *schedules(lineId: string, from: Date, to: Date): AsyncIterable<RecordPage<ScheduleRecord>> {
    for (const value of this.lineValues(lineId)) {
      const { records, errors } = this.read(
        await this.call(this.soapCfg.operations.schedule, this.query(value, from, to)),
        this.context(lineId),
      );
      yield { records: records.filter((r) => r.plannedEnd > from && r.plannedStart < to), errors };
    }
  }

  async workOrder(number: string): Promise<ScheduleRecord | null> {
    // The selection is the ProductionRequest ID alone: no line, no window.
    const answer = await this.call(
      this.soapCfg.operations.schedule,
      this.query(undefined, undefined, undefined, number),
    );
    const { records, errors } = this.read(answer, this.context(null));
    const found = records.find((r) => r.number === number);
    if (found) return found;
    const bad = errors.find((e) => e.key === number);
    if (bad) throw badResponse(this.system, `work order ${number}: ${bad.message}`);
    return null;
  }

  async recipe(id: string): Promise<MesRecipe> {
    throw notSupported(
      this.system,
      `recipe download (${id})`,
      'a B2MML ProductionSchedule/ProductionPerformance MES has no recipe operation; use a REST MES',
    );
  }

  async materialConsumption(workOrderNumber: string): Promise<ConsumptionRecord[]> {
    throw notSupported(
      this.system,
      `material consumption of ${workOrderNumber}`,
      'the B2MML SOAP connector exchanges ProductionSchedule and ProductionPerformance only',
    );
  }

  /**
   * ProductionPerformance/ID is the update's idempotency key, the same on every retry, so a MES that keys its
   * performance records by ID applies a resent report once: resending is safe, and UpstreamClient retries it.
   * B2MML's acknowledgement does not say whether a report was a replay, so `duplicate` is always false here.
   */
  async updateOrderStatus(u: OrderStatusUpdate): Promise<{ duplicate: boolean }> {
    const body = buildProcessProductionPerformance({
      id: u.idempotencyKey,
      workOrderNumber: u.workOrderNumber,
      lineValue: this.lineValues(u.lineId)[0]!,
      state: mesStatus(this.cfg.statusMap, u.status),
      actualQuantity: u.actualQuantity,
      actualStart: u.actualStart,
      actualEnd: u.actualEnd,
      publishedAt: u.reportedAt,
      sender: this.soapCfg.senderId,
    });
    const answer = await this.call(this.soapCfg.operations.performance, body);
    let ack: ReturnType<typeof readAcknowledge>;
    try {
      ack = readAcknowledge(answer);
    } catch (e) {
      if (e instanceof RecordProblem) throw badResponse(this.system, `AcknowledgeProductionPerformance: ${e.message}`);
      throw e;
    }
    if (!ack.accepted)
      throw badResponse(
        this.system,
        `ProductionPerformance ${u.idempotencyKey} for ${u.workOrderNumber} was rejected: ${ack.reason}`,
        { rejected: true },
      );
    return { duplicate: false };
  }

  async close(): Promise<void> {}
}

/**
 * What the soap package rejected with when it could not read an answer: an Error, or
 * `{ Fault: { faultstring, detail } }` for invalid XML.
 */
function soapParseProblem(e: unknown): string {
  const err = e as { message?: unknown; Fault?: { faultstring?: unknown; detail?: unknown } } | undefined;
  if (err?.Fault)
    return (
      `${String(err.Fault.faultstring ?? 'unreadable')}` +
      `${err.Fault.detail ? ` (${String(err.Fault.detail).split('\n')[0]})` : ''}`
    );
  return String(err?.message ?? e);
}
