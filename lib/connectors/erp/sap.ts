import type { ErpConfig, SapConfig } from '../../config/erp.ts';
import { valuesMappedTo } from '../../config/connection.ts';
import { badResponse } from '../errors.ts';
import { UpstreamClient, type UpstreamRequest, type UpstreamResponse } from '../http.ts';
import type { ConsumptionRecord, RecordError, RecordPage, ScheduleRecord } from '../mes/types.ts';
import { PageGuard } from '../paging.ts';
import {
  decimal,
  hubId,
  instant,
  optionalInstant,
  optionalText,
  optionalWholeQuantity,
  RecordProblem,
  text,
  wholeQuantity,
} from '../values.ts';
import { datetimeLiteral, describeSapError, edmDecimal, edmTimeMs, flag, readCollection, str } from './odata.ts';
import type { ConsumptionPosting, ErpConnector, LabourCostRecord, MaterialRecord } from './types.ts';

const SRV = '/sap/opu/odata/sap';
const ORDERS = `${SRV}/API_PRODUCTION_ORDER_2_SRV`;
const PRODUCTS = `${SRV}/API_PRODUCT_SRV`;
const MATDOC = `${SRV}/API_MATERIAL_DOCUMENT_SRV`;
const CONFIRMATIONS = `${SRV}/API_PROD_ORDER_CONFIRMATION_2_SRV`;
const DAY = 86_400_000;

/**
 * SAP S/4HANA through its OData V2 APIs. Reads follow `d.__next` when the server pages for us (RAP services cap
 * pages) and otherwise ask for the next `$skip` while pages come back full (classic services honour $top/$skip).
 * Writes fetch a CSRF token (and the session cookies that go with it) first, and fetch it again once when the
 * server answers 403 `x-csrf-token: Required` (the token expired with its session).
 */
export class SapOdataConnector implements ErpConnector {
  readonly system: string;
  readonly client: UpstreamClient;
  private readonly sap: SapConfig;
  private csrf?: { token: string; cookie: string };
  /** CSRF token fetches made (tests read it). */
  csrfFetches = 0;

  constructor(private readonly cfg: ErpConfig) {
    this.system = cfg.name;
    this.client = new UpstreamClient(cfg.name, cfg.connection);
    this.sap = cfg.sap!;
  }

  private get(url: string, params?: UpstreamRequest['params']): Promise<UpstreamResponse> {
    return this.client.request({ url, params: { ...params, $format: 'json' }, describeError: describeSapError });
  }

  /** Every page of an entity set, with repeat and empty-page guards. */
  private async *pages<T>(
    entitySet: string,
    query: Record<string, string>,
    keyOf: (r: T) => string,
  ): AsyncIterable<T[]> {
    const guard = new PageGuard(this.system);
    const top = this.sap.pageSize;
    let skip = 0;
    let next: string | undefined;
    for (;;) {
      const res = next
        ? await this.get(next)
        : await this.get(entitySet, { ...query, $top: top, $skip: skip, $inlinecount: 'allpages' });
      const page = readCollection<T>(this.system, res.json());
      // __next is the server's own paging: follow it opaquely. Without it, a full page means ask for the next $skip.
      const more = page.next !== undefined || page.results.length >= top;
      guard.page(page.results.map(keyOf), more);
      if (page.next) guard.link(page.next);
      yield page.results;
      if (!more) return;
      skip += page.results.length;
      next = page.next;
    }
  }

  async *productionOrders(lineId: string, from: Date, to: Date): AsyncIterable<RecordPage<ScheduleRecord>> {
    const values = valuesMappedTo(this.cfg.lineMap, lineId);
    if (!values.length)
      throw badResponse(this.system, `no ${this.sap.lineField} value maps to line ${lineId} (erp.yml lineMap)`);
    // Dates are whole days in SAP: filter by day, then keep the orders whose exact window overlaps [from, to).
    const dayFrom = new Date(Math.floor(from.getTime() / DAY) * DAY);
    const filter = [
      `ProductionPlant eq ${str(this.sap.plant)}`,
      `(${values.map((v) => `${this.sap.lineField} eq ${str(v)}`).join(' or ')})`,
      `MfgOrderPlannedStartDate lt ${datetimeLiteral(to)}`,
      `MfgOrderPlannedEndDate ge ${datetimeLiteral(dayFrom)}`,
    ].join(' and ');
    for await (const rows of this.pages<Record<string, unknown>>(
      `${ORDERS}/A_ProductionOrder_2`,
      { $filter: filter },
      (r) => String(r.ManufacturingOrder),
    )) {
      const page: RecordPage<ScheduleRecord> = { records: [], errors: [] };
      for (const r of rows) {
        const m = mapOrder(r, lineId);
        if ('error' in m) page.errors.push(m.error);
        else if (m.record.plannedEnd > from && m.record.plannedStart < to) page.records.push(m.record);
      }
      yield page;
    }
  }

  async *materials(): AsyncIterable<RecordPage<MaterialRecord>> {
    const query = {
      $select:
        'Product,ProductType,BaseUnit,ProductGroup,GrossWeight,NetWeight,WeightUnit,IsMarkedForDeletion,' +
        'LastChangeDateTime,to_Description/Language,to_Description/ProductDescription',
      $expand: 'to_Description',
    };
    type ProductRow = Record<string, unknown> & {
      to_Description?: { results?: { Language?: string; ProductDescription?: string }[] };
    };
    for await (const rows of this.pages<ProductRow>(`${PRODUCTS}/A_Product`, query, (r) => String(r.Product))) {
      const page: RecordPage<MaterialRecord> = { records: [], errors: [] };
      for (const r of rows) {
        try {
          const texts = r.to_Description?.results ?? [];
          const weight = (v: unknown, f: string) => (v === undefined || v === null || v === '' ? null : decimal(v, f));
          page.records.push({
            id: hubId(r.Product, 'Product'),
            description: (texts.find((t) => t.Language === 'EN') ?? texts[0])?.ProductDescription ?? null,
            type: optionalText(r.ProductType),
            baseUnit: optionalText(r.BaseUnit),
            group: optionalText(r.ProductGroup),
            grossWeight: weight(r.GrossWeight, 'GrossWeight'),
            netWeight: weight(r.NetWeight, 'NetWeight'),
            weightUnit: optionalText(r.WeightUnit),
            isMarkedForDeletion: flag(r.IsMarkedForDeletion),
            changedAt: optionalInstant(r.LastChangeDateTime, 'LastChangeDateTime'),
          });
        } catch (e) {
          if (!(e instanceof RecordProblem)) throw e;
          page.errors.push({ key: String(r.Product ?? '?'), message: e.message });
        }
      }
      yield page;
    }
  }

  async *labourCosts(from: Date, to: Date): AsyncIterable<RecordPage<LabourCostRecord>> {
    // [unverified] ProdnOrdConf2 property names as in SAP's API_PROD_ORDER_CONFIRMATION_2_SRV documentation.
    const filter =
      `ConfirmedExecutionStartDate ge ${datetimeLiteral(from)} ` +
      `and ConfirmedExecutionStartDate lt ${datetimeLiteral(to)} and IsReversed eq false`;
    for await (const rows of this.pages<Record<string, unknown>>(
      `${CONFIRMATIONS}/ProdnOrdConf2`,
      { $filter: filter },
      (r) => `${r.ConfirmationGroup}/${r.ConfirmationCount}`,
    )) {
      const page: RecordPage<LabourCostRecord> = { records: [], errors: [] };
      for (const r of rows) {
        const key = `${r.ConfirmationGroup}/${r.ConfirmationCount}`;
        try {
          const workCenter = text(r.WorkCenter, 'WorkCenter');
          const unit = optionalText(r.OpWorkQuantityUnit1) ?? 'H';
          const raw = decimal(r.OpConfirmedWorkQuantity1, 'OpConfirmedWorkQuantity1');
          const hours = unit === 'MIN' ? raw / 60 : unit === 'H' || unit === 'HR' ? raw : NaN;
          if (!Number.isFinite(hours))
            throw new RecordProblem(`OpWorkQuantityUnit1 ${JSON.stringify(unit)} is not H or MIN`);
          const rate = this.sap.labourRates[workCenter];
          page.records.push({
            externalId: key,
            costCenter: rate?.costCenter ?? workCenter,
            workCenter,
            lineId: this.cfg.lineMap[workCenter] ?? null,
            workOrderNumber: optionalText(r.OrderID),
            workDate: instant(r.ConfirmedExecutionStartDate, 'ConfirmedExecutionStartDate').toISOString().slice(0, 10),
            hours,
            ratePerHour: rate?.ratePerHour ?? null,
            cost: rate ? Math.round(hours * rate.ratePerHour * 100) / 100 : null,
            currency: rate?.currency ?? null,
          });
        } catch (e) {
          if (!(e instanceof RecordProblem)) throw e;
          page.errors.push({ key, message: e.message });
        }
      }
      yield page;
    }
  }

  async inventoryConsumption(workOrderNumber: string): Promise<ConsumptionRecord[]> {
    const out: ConsumptionRecord[] = [];
    const filter =
      `ManufacturingOrder eq ${str(workOrderNumber)} ` +
      `and GoodsMovementType eq ${str(this.sap.goodsIssueMovementType)}`;
    const key = (r: Record<string, unknown>) =>
      `${r.MaterialDocumentYear}/${r.MaterialDocument}/${r.MaterialDocumentItem}`;
    for await (const rows of this.pages<Record<string, unknown>>(
      `${MATDOC}/A_MaterialDocumentItem`,
      { $filter: filter },
      key,
    )) {
      for (const r of rows) {
        try {
          out.push({
            externalId: key(r),
            workOrderNumber,
            materialId: hubId(r.Material, 'Material'),
            quantity: decimal(r.QuantityInEntryUnit, 'QuantityInEntryUnit'),
            unit: text(r.EntryUnit, 'EntryUnit'),
            lot: optionalText(r.Batch),
            consumedAt: instant(r.PostingDate, 'PostingDate'),
          });
        } catch (e) {
          if (e instanceof RecordProblem) throw badResponse(this.system, `material document ${key(r)}: ${e.message}`);
          throw e;
        }
      }
    }
    return out;
  }

  async postConsumption(c: ConsumptionPosting): Promise<{ documentId: string }> {
    const body = {
      GoodsMovementCode: '03',
      PostingDate: `/Date(${Math.floor(c.postedAt.getTime() / DAY) * DAY})/`,
      to_MaterialDocumentItem: {
        results: [
          {
            Material: c.materialId,
            Plant: this.sap.plant,
            ...(this.sap.storageLocation ? { StorageLocation: this.sap.storageLocation } : {}),
            GoodsMovementType: this.sap.goodsIssueMovementType,
            ManufacturingOrder: c.workOrderNumber,
            QuantityInEntryUnit: edmDecimal(c.quantity),
            EntryUnit: c.unit,
            ...(c.lot ? { Batch: c.lot } : {}),
          },
        ],
      },
    };
    const res = await this.write(MATDOC, `${MATDOC}/A_MaterialDocumentHeader`, body);
    const d = (res.json() as { d?: { MaterialDocument?: string; MaterialDocumentYear?: string } }).d;
    if (!d?.MaterialDocument) throw badResponse(this.system, 'goods issue answer has no MaterialDocument');
    return { documentId: `${d.MaterialDocumentYear ?? ''}/${d.MaterialDocument}` };
  }

  /** POST with the CSRF token; one fresh token and one more try when the server says the token is stale. */
  private async write(service: string, url: string, data: unknown): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      if (!this.csrf || attempt > 0) this.csrf = await this.fetchCsrf(service);
      const res = await this.client.request({
        method: 'POST',
        url,
        data,
        headers: { 'x-csrf-token': this.csrf.token, ...(this.csrf.cookie ? { cookie: this.csrf.cookie } : {}) },
        describeError: describeSapError,
        // A goods issue is not idempotent: never resend it blindly after a timeout (see UpstreamRequest.idempotent).
        idempotent: false,
        pass: (s) => s === 403,
      });
      if (res.status !== 403) return res;
      const csrfRequired = String(res.headers['x-csrf-token'] ?? '').toLowerCase() === 'required';
      if (!csrfRequired || attempt >= 1) {
        const d = describeSapError(res.text);
        throw badResponse(
          this.system,
          `POST ${url} answered 403${csrfRequired ? ' (CSRF token refused twice)' : ''}${d ? `: ${d.message}` : ''}`,
          { status: 403, upstreamCode: d?.upstreamCode, rejected: true },
        );
      }
    }
  }

  private async fetchCsrf(service: string): Promise<{ token: string; cookie: string }> {
    this.csrfFetches++;
    const res = await this.client.request({
      url: `${service}/`,
      headers: { 'x-csrf-token': 'Fetch' },
      describeError: describeSapError,
    });
    const token = res.headers['x-csrf-token'];
    if (typeof token !== 'string' || !token || token.toLowerCase() === 'required')
      throw badResponse(this.system, 'no CSRF token in the fetch answer');
    const setCookie = res.headers['set-cookie'];
    const cookies = (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
      .map((c) => c.split(';')[0])
      .filter(Boolean);
    return { token, cookie: cookies.join('; ') };
  }

  async close(): Promise<void> {}
}

/** One A_ProductionOrder_2 entity → a work order. Dates without a time are whole days (start 00:00, end 24:00 UTC). */
export function mapOrder(
  r: Record<string, unknown>,
  lineId: string,
): { record: ScheduleRecord } | { error: RecordError } {
  const key = String(r.ManufacturingOrder ?? '?');
  try {
    const number = text(r.ManufacturingOrder, 'ManufacturingOrder');
    const useScheduled = r.MfgOrderScheduledStartDate != null && r.MfgOrderScheduledStartDate !== '';
    const p = useScheduled ? 'MfgOrderScheduled' : 'MfgOrderPlanned';
    const startDate = instant(r[`${p}StartDate`], `${p}StartDate`).getTime();
    const endDate = instant(r[`${p}EndDate`], `${p}EndDate`).getTime();
    const endTime = r[`${p}EndTime`];
    const plannedStart = new Date(startDate + edmTimeMs(r[`${p}StartTime`], `${p}StartTime`));
    const plannedEnd = new Date(endDate + (endTime ? edmTimeMs(endTime, `${p}EndTime`) : DAY));
    if (plannedEnd <= plannedStart) throw new RecordProblem(`${p}End is not after ${p}Start`);
    const confirmed = optionalWholeQuantity(r.MfgOrderConfirmedYieldQty, 'MfgOrderConfirmedYieldQty');
    const status =
      flag(r.OrderIsMarkedForDeletion) || flag(r.OrderIsDeleted)
        ? 'CANCELLED'
        : flag(r.OrderIsTechnicallyCompleted) || flag(r.OrderIsClosed)
          ? 'COMPLETED'
          : flag(r.OrderIsPartiallyConfirmed) || flag(r.OrderIsConfirmed) || (confirmed ?? 0) > 0
            ? 'ACTIVE'
            : 'PLANNED';
    return {
      record: {
        number,
        lineId,
        productId: r.Material ? hubId(r.Material, 'Material') : null,
        recipeCode: null,
        plannedStart,
        plannedEnd,
        plannedQuantity: wholeQuantity(r.TotalQuantity, 'TotalQuantity'),
        actualQuantity: confirmed,
        actualStart: null,
        actualEnd: null,
        status,
        priority: 5,
      },
    };
  } catch (e) {
    if (e instanceof RecordProblem) return { error: { key, message: e.message } };
    throw e;
  }
}
