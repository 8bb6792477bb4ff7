import type { ErpConfig, OracleConfig } from '../../config/erp.ts';
import { valuesMappedTo } from '../../config/connection.ts';
import { badResponse, notSupported } from '../errors.ts';
import { at, UpstreamClient } from '../http.ts';
import type { ConsumptionRecord, RecordPage, ScheduleRecord } from '../mes/types.ts';
import { PageGuard } from '../paging.ts';
import type { ConsumptionPosting, ErpConnector, ErpOperation, LabourCostRecord, MaterialRecord } from './types.ts';
import { describeOracleError, mapOracleWorkOrder, oracleString } from './oracle-format.ts';

/**
 * Oracle Fusion Cloud SCM through its REST API (reference/protocols.md §3): production orders are `workOrders`
 * under /fscmRestApi/resources/<version>/, filtered with a `q` row-match expression and read page by page with
 * `limit`/`offset` until `hasMore` is false; a page that repeats or an empty page that promises more stops the
 * read. The rest of the ERP interface (material master, labour, goods issues) is not in what protocols.md
 * covers for Oracle: those calls say so with a NOT_SUPPORTED error instead of guessing at resources.
 */
export class OracleRestConnector implements ErpConnector {
  readonly system: string;
  readonly client: UpstreamClient;
  readonly unsupported: ReadonlySet<ErpOperation> = new Set(['materials', 'labour', 'consumption', 'postConsumption']);
  private readonly oracle: OracleConfig;

  constructor(private readonly cfg: ErpConfig) {
    this.system = cfg.name;
    // Row-match `q` expressions (and/or, quoted literals) need REST framework version 2 or later; a configured header
    // wins.
    const headers = Object.keys(cfg.connection.headers).some((h) => h.toLowerCase() === 'rest-framework-version')
      ? cfg.connection.headers
      : { ...cfg.connection.headers, 'REST-Framework-Version': '4' };
    this.client = new UpstreamClient(cfg.name, { ...cfg.connection, headers });
    this.oracle = cfg.oracle!;
  }

  private get resources() {
    return `/fscmRestApi/resources/${this.oracle.version}`;
  }

  async *productionOrders(lineId: string, from: Date, to: Date): AsyncIterable<RecordPage<ScheduleRecord>> {
    const values = valuesMappedTo(this.cfg.lineMap, lineId);
    if (!values.length)
      throw badResponse(this.system, `no ${this.oracle.lineField} value maps to line ${lineId} (erp.yml lineMap)`);
    const f = this.oracle.lineField;
    const q = [
      `OrganizationCode=${oracleString(this.oracle.organizationCode)}`,
      `(${values.map((v) => `${f}=${oracleString(v)}`).join(' or ')})`,
      `PlannedStartDate<${oracleString(to.toISOString())}`,
      `PlannedCompletionDate>${oracleString(from.toISOString())}`,
    ].join(' and ');
    const guard = new PageGuard(this.system);
    const limit = this.oracle.pageSize;
    for (let offset = 0; ; ) {
      const body = (
        await this.client.request({
          url: `${this.resources}/workOrders`,
          // A stable order, or offsets skip and repeat rows while the ERP's data moves under the read.
          params: { q, limit, offset, orderBy: 'WorkOrderNumber:asc', onlyData: 'true', totalResults: 'false' },
          describeError: describeOracleError,
        })
      ).json();
      const items = at(body, 'items');
      if (!Array.isArray(items)) throw badResponse(this.system, 'workOrders answer has no items array');
      const hasMore = at(body, 'hasMore');
      const more = typeof hasMore === 'boolean' ? hasMore : items.length >= limit;
      guard.page(
        items.map((i) => String(at(i, 'WorkOrderId') ?? at(i, 'WorkOrderNumber') ?? JSON.stringify(i))),
        more,
      );
      const page: RecordPage<ScheduleRecord> = { records: [], errors: [] };
      for (const raw of items) {
        const m = mapOracleWorkOrder(raw, lineId, f, this.cfg.lineMap);
        if ('error' in m) page.errors.push(m.error);
        else if (m.record.plannedEnd > from && m.record.plannedStart < to) page.records.push(m.record);
      }
      yield page;
      if (!more) return;
      offset += items.length;
    }
  }

  materials(): AsyncIterable<RecordPage<MaterialRecord>> {
    return this.refuse('the material master');
  }

  labourCosts(): AsyncIterable<RecordPage<LabourCostRecord>> {
    return this.refuse('labour costs');
  }

  async inventoryConsumption(workOrderNumber: string): Promise<ConsumptionRecord[]> {
    throw notSupported(
      this.system,
      `material consumption of ${workOrderNumber}`,
      'the Oracle connector reads workOrders only',
    );
  }

  async postConsumption(c: ConsumptionPosting): Promise<{ documentId: string }> {
    throw notSupported(
      this.system,
      `a goods issue to ${c.workOrderNumber}`,
      'the Oracle connector reads workOrders only',
    );
  }

  // biome-ignore lint/correctness/useYield: it only throws, but as a generator: at the first next(), not when called
  private async *refuse(what: string): AsyncIterable<never> {
    throw notSupported(this.system, what, 'the Oracle connector reads workOrders only');
  }

  async close(): Promise<void> {}
}
