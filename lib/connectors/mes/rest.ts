import { defaultRestConfig, type MesConfig, type MesRestConfig } from '../../config/mes.ts';
import { at, UpstreamClient } from '../http.ts';
import { badResponse } from '../errors.ts';
import { PageGuard } from '../paging.ts';
import { decimal, hubId, instant, optionalText, RecordProblem, text } from '../values.ts';
import { mapScheduleRecord, mesStatus } from './mapping.ts';
import type {
  ConsumptionRecord,
  MesConnector,
  MesRecipe,
  OrderStatusUpdate,
  RecordPage,
  ScheduleRecord,
} from './types.ts';

/**
 * A JSON REST MES, configured rather than coded: paths, query parameter names, paging style and the field
 * mappings come from mes.yml. Status reports carry an Idempotency-Key header (the update's key), so a report
 * retried after a lost answer is recognised by the MES and not applied twice.
 */
export class RestMesConnector implements MesConnector {
  readonly system: string;
  readonly client: UpstreamClient;
  private readonly rest: MesRestConfig;

  constructor(private readonly cfg: MesConfig) {
    this.system = cfg.name;
    this.client = new UpstreamClient(cfg.name, cfg.connection);
    this.rest = cfg.rest ?? defaultRestConfig();
  }

  private path(template: string, id: string) {
    return template.replace('{id}', encodeURIComponent(id));
  }

  async *schedules(lineId: string, from: Date, to: Date): AsyncIterable<RecordPage<ScheduleRecord>> {
    const p = this.rest.paging;
    const guard = new PageGuard(this.system, p.maxPages);
    const base = {
      [this.rest.params.line]: lineId,
      [this.rest.params.from]: from.toISOString(),
      [this.rest.params.to]: to.toISOString(),
    };
    let url: string | undefined = this.rest.paths.schedules;
    let offset = 0;
    while (url) {
      const params: Record<string, string | number> =
        p.style === 'offset'
          ? { ...base, [p.limitParam]: p.pageSize, [p.offsetParam]: offset }
          : offset === 0
            ? { ...base, [p.limitParam]: p.pageSize }
            : {};
      const body = (await this.client.request({ url, params })).json();
      const items = at(body, p.itemsPath);
      if (!Array.isArray(items)) throw badResponse(this.system, `schedules page has no "${p.itemsPath}" array`);
      let next: string | undefined;
      if (p.style === 'nextLink') {
        const n = at(body, p.nextPath);
        next = typeof n === 'string' && n ? n : undefined;
      } else {
        const hasMore = at(body, 'hasMore');
        next = (typeof hasMore === 'boolean' ? hasMore : items.length >= p.pageSize) ? url : undefined;
      }
      guard.page(
        items.map((i) => String(at(i, this.cfg.fieldMappings.workOrderNumber) ?? JSON.stringify(i))),
        next !== undefined,
      );
      if (p.style === 'nextLink' && next) guard.link(next);
      const page: RecordPage<ScheduleRecord> = { records: [], errors: [] };
      for (const raw of items) {
        const r = mapScheduleRecord(raw, this.cfg.fieldMappings, this.cfg.statusMap, lineId);
        if ('record' in r) page.records.push(r.record);
        else page.errors.push(r.error);
      }
      yield page;
      offset += items.length;
      url = next;
    }
  }

  async workOrder(number: string): Promise<ScheduleRecord | null> {
    const res = await this.client.request({
      url: this.path(this.rest.paths.workOrder, number),
      pass: (s) => s === 404,
    });
    if (res.status === 404) return null;
    const raw = res.json();
    const line = optionalText(at(raw, this.cfg.fieldMappings.lineId));
    if (!line) throw badResponse(this.system, `work order ${number} names no line (${this.cfg.fieldMappings.lineId})`);
    const r = mapScheduleRecord(raw, this.cfg.fieldMappings, this.cfg.statusMap, line);
    if ('error' in r) throw badResponse(this.system, `work order ${number}: ${r.error.message}`);
    return r.record;
  }

  async recipe(id: string): Promise<MesRecipe> {
    const res = await this.client.request({ url: this.path(this.rest.paths.recipe, id), pass: (s) => s === 404 });
    if (res.status === 404) throw badResponse(this.system, `recipe ${id} does not exist in the MES`, { status: 404 });
    const raw = res.json();
    const m = this.cfg.recipeMappings;
    try {
      const params = at(raw, m.parameters);
      return {
        code: text(at(raw, m.code), m.code),
        version: text(at(raw, m.version), m.version),
        productId: hubId(at(raw, m.productId), m.productId),
        lineId: optionalText(at(raw, m.lineId)),
        targetCycleTimeSeconds: positive(
          decimal(at(raw, m.targetCycleTimeSeconds), m.targetCycleTimeSeconds),
          m.targetCycleTimeSeconds,
        ),
        setupTimeSeconds:
          at(raw, m.setupTimeSeconds) == null ? 0 : decimal(at(raw, m.setupTimeSeconds), m.setupTimeSeconds),
        teardownTimeSeconds:
          at(raw, m.teardownTimeSeconds) == null ? 0 : decimal(at(raw, m.teardownTimeSeconds), m.teardownTimeSeconds),
        parameters:
          params && typeof params === 'object' && !Array.isArray(params) ? (params as Record<string, unknown>) : {},
      };
    } catch (e) {
      if (e instanceof RecordProblem) throw badResponse(this.system, `recipe ${id}: ${e.message}`);
      throw e;
    }
  }

  async materialConsumption(workOrderNumber: string): Promise<ConsumptionRecord[]> {
    const body = (await this.client.request({ url: this.path(this.rest.paths.consumption, workOrderNumber) })).json();
    const items = at(body, this.rest.paging.itemsPath);
    if (!Array.isArray(items))
      throw badResponse(this.system, `consumption of ${workOrderNumber} has no "${this.rest.paging.itemsPath}" array`);
    const m = this.cfg.consumptionMappings;
    return items.map((raw) => {
      try {
        return {
          externalId: text(at(raw, m.id), m.id),
          workOrderNumber,
          materialId: hubId(at(raw, m.materialId), m.materialId),
          quantity: decimal(at(raw, m.quantity), m.quantity),
          unit: text(at(raw, m.unit), m.unit),
          lot: optionalText(at(raw, m.lot)),
          consumedAt: instant(at(raw, m.consumedAt), m.consumedAt),
        };
      } catch (e) {
        if (e instanceof RecordProblem)
          throw badResponse(this.system, `consumption of ${workOrderNumber}: ${e.message}`);
        throw e;
      }
    });
  }

  async updateOrderStatus(u: OrderStatusUpdate): Promise<{ duplicate: boolean }> {
    const res = await this.client.request({
      method: 'POST',
      url: this.path(this.rest.paths.orderStatus, u.workOrderNumber),
      headers: { 'idempotency-key': u.idempotencyKey },
      idempotent: true,
      data: {
        status: mesStatus(this.cfg.statusMap, u.status),
        actualQuantity: u.actualQuantity,
        actualStart: u.actualStart?.toISOString() ?? null,
        actualEnd: u.actualEnd?.toISOString() ?? null,
        reportedAt: u.reportedAt.toISOString(),
      },
      // 409 with our key: the MES has this update already (a retry after a lost answer).
      pass: (s) => s === 409,
    });
    if (res.status === 409) return { duplicate: true };
    const replay = res.headers['idempotent-replayed'];
    return { duplicate: replay === 'true' };
  }

  async close(): Promise<void> {}
}

function positive(n: number, field: string): number {
  if (n <= 0) throw new RecordProblem(`${field} must be greater than 0`);
  return n;
}
