import { randomUUID } from 'node:crypto';
import type { Db } from '../../../lib/db/index.ts';
import type { MesConfig } from '../../../lib/config/mes.ts';
import type { ErpConfig } from '../../../lib/config/erp.ts';
import type { MesConnector, RecordPage, ScheduleRecord, WorkOrderStatus } from '../../../lib/connectors/mes/types.ts';
import type { ErpConnector, ErpOperation } from '../../../lib/connectors/erp/types.ts';
import { notSupported } from '../../../lib/connectors/errors.ts';
import { badInput, HubError, notFound } from '../../../lib/errors.ts';
import type { WorkOrderRow } from '../../../lib/db/rows.ts';
import { ensureProducts, lineExists, withTryLock, type Counts } from './shared.repo.ts';
import { upsertWorkOrders } from './work-orders.repo.ts';
import { upsertLabour, upsertMaterials } from './master-data.repo.ts';
import { upsertConsumption } from './consumption.repo.ts';
import { insertRecipeDownload, latestRecipe } from './recipes.repo.ts';
import { outboundById, recordStatusChange, requeueRejected } from './outbox.repo.ts';
import { insertRecipe } from '../production.repo.ts';
import { recordSync, type SyncTally } from './sync-run.ts';
import type { OutboundUpdateRow, RecipeDownloadRow, SyncKind, SyncRunRow } from './tables.ts';

export type SystemKind = 'MES' | 'ERP';
export interface Actor {
  sub: string;
  requestId?: string | null;
}
export const SCHEDULER: Actor = { sub: 'system:scheduler' };
/** A caller-supplied idempotency key (order status reports, goods issues): 8–128 letters, digits or _ . : - */
export const IDEMPOTENCY_KEY = /^[\w.:-]{8,128}$/;

/**
 * The hub's side of MES/ERP integration: syncs (schedules, materials, labour, consumption), recipe downloads
 * and order status reports. Resolvers and scheduled jobs call the same methods, so a sync through the gateway
 * and one from the queue take the same path, the same per-line lock and land in the same history.
 */
export class Integrations {
  /**
   * Set by the job runner: wakes the outbox sender for a new or re-queued report. Without it they wait in the outbox.
   */
  kickOutbound?: () => void;

  constructor(
    readonly db: Db,
    readonly mesConfig: MesConfig | undefined,
    readonly erpConfig: ErpConfig | undefined,
    readonly mes: MesConnector | undefined,
    readonly erp: ErpConnector | undefined,
  ) {}

  /** Which system feeds a line's schedule: the MES that serves it, else the ERP that maps it. */
  scheduleSource(lineId: string, asked?: SystemKind | null): SystemKind {
    const mes = !!this.mes && !!this.mesConfig?.lines.includes(lineId);
    const erp = !!this.erp && Object.values(this.erpConfig?.lineMap ?? {}).includes(lineId);
    if (asked === 'MES' ? mes : asked === 'ERP' ? erp : mes || erp) return asked ?? (mes ? 'MES' : 'ERP');
    throw badInput(`no ${asked ?? 'MES or ERP'} is configured for line ${lineId} (mes.yml lines / erp.yml lineMap)`, {
      argument: 'lineId',
    });
  }

  /** Schedules of one line in [from, to). One at a time per line, across every hub instance (advisory lock). */
  async syncSchedules(a: {
    lineId: string;
    from: Date;
    to: Date;
    system?: SystemKind | null;
    trigger: 'MANUAL' | 'SCHEDULED';
    actor: Actor;
  }): Promise<SyncRunRow | undefined> {
    if (!(a.to > a.from)) throw badInput('to must be after from', { argument: 'to' });
    if (a.to.getTime() - a.from.getTime() > 366 * 86_400_000)
      throw badInput('the range may span at most 366 days', { argument: 'to' });
    if (!(await lineExists(this.db, a.lineId))) throw notFound('Line', a.lineId);
    const kind = this.scheduleSource(a.lineId, a.system);
    const source = kind === 'MES' ? this.mes! : this.erp!;
    const batchSize = kind === 'MES' ? this.mesConfig!.sync.batchSize : this.erpConfig!.sync.batchSize;
    const locked = await withTryLock(this.db, `schedule-sync:${a.lineId}`, () =>
      recordSync(
        this.db,
        {
          system: source.system,
          systemKind: kind,
          kind: 'SCHEDULES',
          lineId: a.lineId,
          rangeFrom: a.from,
          rangeTo: a.to,
          trigger: a.trigger,
          actor: a.actor.sub,
          requestId: a.actor.requestId,
        },
        (t) =>
          this.writeSchedules(
            kind === 'MES'
              ? this.mes!.schedules(a.lineId, a.from, a.to)
              : this.erp!.productionOrders(a.lineId, a.from, a.to),
            source.system,
            batchSize,
            t,
          ),
      ),
    );
    if (locked.ran) return locked.value;
    if (a.trigger === 'SCHEDULED') return undefined; // the running sync covers it
    throw new HubError('CONFLICT', `a schedule sync for line ${a.lineId} is already running`, { lineId: a.lineId });
  }

  /** Pages in, batches out: each batch is one upsert; an order seen twice in one sync is kept once (the first). */
  private async writeSchedules(
    pages: AsyncIterable<RecordPage<ScheduleRecord>>,
    system: string,
    batchSize: number,
    t: SyncTally,
  ) {
    const seen = new Set<string>();
    let batch: ScheduleRecord[] = [];
    const flush = async () => {
      if (!batch.length) return;
      const products = batch.map((r) => r.productId).filter((p): p is string => p !== null);
      await ensureProducts(this.db, products);
      t.add(await upsertWorkOrders(this.db, batch, system));
      batch = [];
    };
    try {
      for await (const page of pages) {
        t.fetched += page.records.length + page.errors.length;
        t.recordErrors(page.errors);
        for (const r of page.records) {
          if (seen.has(r.number)) {
            t.recordErrors([{ key: r.number, message: 'the order appears twice in one sync; the first is kept' }]);
            continue;
          }
          seen.add(r.number);
          batch.push(r);
          if (batch.length >= batchSize) await flush();
        }
      }
    } finally {
      // What was read before a failure is still written.
      await flush();
    }
  }

  async syncMaterials(a: { trigger: 'MANUAL' | 'SCHEDULED'; actor: Actor }): Promise<SyncRunRow> {
    const erp = this.requireErp('materials', 'the material master');
    return this.syncErpPages(
      erp,
      { kind: 'MATERIALS', trigger: a.trigger, actor: a.actor },
      () => erp.materials(),
      upsertMaterials,
    );
  }

  async syncLabour(a: { from: Date; to: Date; trigger: 'MANUAL' | 'SCHEDULED'; actor: Actor }): Promise<SyncRunRow> {
    const erp = this.requireErp('labour', 'labour costs');
    if (!(a.to > a.from)) throw badInput('to must be after from', { argument: 'to' });
    return this.syncErpPages(
      erp,
      { kind: 'LABOUR', rangeFrom: a.from, rangeTo: a.to, trigger: a.trigger, actor: a.actor },
      () => erp.labourCosts(a.from, a.to),
      upsertLabour,
    );
  }

  /** An ERP sync not tied to a line (materials, labour): each page's records are written as it arrives. */
  private syncErpPages<R>(
    erp: ErpConnector,
    run: { kind: SyncKind; rangeFrom?: Date; rangeTo?: Date; trigger: 'MANUAL' | 'SCHEDULED'; actor: Actor },
    pages: () => AsyncIterable<RecordPage<R>>,
    upsert: (db: Db, rows: R[], system: string) => Promise<Counts>,
  ): Promise<SyncRunRow> {
    const { actor, ...meta } = run;
    return recordSync(
      this.db,
      { ...meta, system: erp.system, systemKind: 'ERP', lineId: null, actor: actor.sub, requestId: actor.requestId },
      async (t) => {
        for await (const page of pages()) {
          t.fetched += page.records.length + page.errors.length;
          t.recordErrors(page.errors);
          t.add(await upsert(this.db, page.records, erp.system));
        }
      },
    );
  }

  /** Material consumed by one work order, from the MES (bookings) or the ERP (goods issues). */
  async syncConsumption(a: { workOrder: WorkOrderRow; system: SystemKind; actor: Actor }): Promise<SyncRunRow> {
    const conn = a.system === 'MES' ? this.requireMes() : this.requireErp('consumption', 'material consumption');
    const wo = a.workOrder;
    return recordSync(
      this.db,
      {
        system: conn.system,
        systemKind: a.system,
        kind: 'CONSUMPTION',
        lineId: wo.lineId,
        workOrderId: wo.id,
        trigger: 'MANUAL',
        actor: a.actor.sub,
        requestId: a.actor.requestId,
      },
      async (t) => {
        const rows =
          a.system === 'MES'
            ? await this.mes!.materialConsumption(wo.number)
            : await this.erp!.inventoryConsumption(wo.number);
        t.fetched += rows.length;
        t.add(await upsertConsumption(this.db, wo.id, rows, conn.system));
      },
    );
  }

  /**
   * A recipe from the MES becomes a version of our recipe with the same code: a new version when anything
   * differs from the latest one, none when it is the same (the download is recorded either way).
   */
  async downloadRecipe(a: { mesRecipeId: string; lineId?: string | null; actor: Actor }): Promise<RecipeDownloadRow> {
    const mes = this.requireMes();
    const r = await mes.recipe(a.mesRecipeId);
    const lineId = a.lineId ?? r.lineId;
    if (lineId && !(await lineExists(this.db, lineId)))
      throw badInput(`recipe ${r.code} names line ${lineId}, which does not exist`, { argument: 'lineId' });
    await ensureProducts(this.db, [r.productId]);
    const wanted = {
      code: r.code,
      productId: r.productId,
      lineId: lineId ?? null,
      targetCycleTimeSeconds: r.targetCycleTimeSeconds,
      setupTimeSeconds: r.setupTimeSeconds,
      teardownTimeSeconds: r.teardownTimeSeconds,
      parameters: { ...r.parameters, mesVersion: r.version },
    };
    const latest = await latestRecipe(this.db, r.code);
    const same =
      latest &&
      latest.productId === wanted.productId &&
      latest.lineId === wanted.lineId &&
      latest.targetCycleTimeSeconds === wanted.targetCycleTimeSeconds &&
      latest.setupTimeSeconds === wanted.setupTimeSeconds &&
      latest.teardownTimeSeconds === wanted.teardownTimeSeconds &&
      stableJson(latest.parameters) === stableJson(wanted.parameters);
    const recipe = same ? latest : await insertRecipe(this.db, wanted);
    return insertRecipeDownload(this.db, {
      system: mes.system,
      mesRecipeId: a.mesRecipeId,
      mesVersion: r.version,
      recipeId: recipe.id,
      createdVersion: !same,
      downloadedBy: a.actor.sub,
    });
  }

  /**
   * Records a status change locally and queues its report to the MES (same transaction). The report is sent
   * at least once by the outbox sender and carries the same idempotency key every time, so the MES applies it once.
   * A caller-supplied key makes the mutation itself safe to retry: the same key returns the same report.
   */
  async updateOrderStatus(a: {
    workOrder: WorkOrderRow;
    status: WorkOrderStatus;
    actualQuantity: number;
    actualStart?: Date | null;
    actualEnd?: Date | null;
    idempotencyKey?: string | null;
    actor: Actor;
  }): Promise<OutboundUpdateRow> {
    const mes = this.requireMes();
    if (!this.mesConfig!.sync.bidirectionalUpdates)
      throw badInput('order status updates to the MES are switched off (mes.yml sync.bidirectionalUpdates)');
    if (!Number.isInteger(a.actualQuantity) || a.actualQuantity < 0)
      throw badInput('actualQuantity must be a whole number ≥ 0', { argument: 'actualQuantity' });
    const wo = a.workOrder;
    const actualStart = a.actualStart ?? wo.actualStart ?? (a.status !== 'PLANNED' ? new Date() : null);
    const actualEnd = a.actualEnd ?? wo.actualEnd ?? (a.status === 'COMPLETED' ? new Date() : null);
    if (actualStart && actualEnd && actualEnd < actualStart)
      throw badInput('actualEnd is before actualStart', { argument: 'actualEnd' });
    const key = a.idempotencyKey ?? randomUUID();
    if (!IDEMPOTENCY_KEY.test(key))
      throw badInput('idempotencyKey must be 8–128 letters, digits or _ . : -', { argument: 'idempotencyKey' });
    const result = await recordStatusChange(
      this.db,
      {
        idempotencyKey: key,
        system: mes.system,
        workOrderId: wo.id,
        workOrderNumber: wo.number,
        lineId: wo.lineId,
        status: a.status,
        actualQuantity: a.actualQuantity,
        actualStart,
        actualEnd,
        requestedBy: a.actor.sub,
      },
      // A replay is the same request: same order, status and quantity, and the same times where the caller gave them
      // (times it left out were derived from the order, which the first request already changed).
      (r) =>
        r.workOrderId === wo.id &&
        r.status === a.status &&
        r.actualQuantity === a.actualQuantity &&
        (!a.actualStart || r.actualStart?.getTime() === a.actualStart.getTime()) &&
        (!a.actualEnd || r.actualEnd?.getTime() === a.actualEnd.getTime()),
    );
    if (result.kind === 'conflict') {
      const why = result.row.workOrderId !== wo.id ? 'another work order' : 'a different status, quantity or time';
      throw new HubError('CONFLICT', `idempotencyKey was already used for ${why}; nothing was changed`, {
        argument: 'idempotencyKey',
        outboundUpdateId: result.row.id,
      });
    }
    if (result.kind === 'created') this.kickOutbound?.();
    return result.row;
  }

  /** A report the MES refused, sent again (an engineer fixed the cause, e.g. the order's lock in the MES). */
  async requeueOutbound(id: string): Promise<OutboundUpdateRow> {
    const row = await requeueRejected(this.db, id);
    if (!row) {
      const cur = await outboundById(this.db, id);
      if (!cur) throw notFound('OutboundUpdate', id);
      throw new HubError('CONFLICT', `the report is ${cur.state}; only a REJECTED report can be re-queued`, {
        state: cur.state,
      });
    }
    this.kickOutbound?.();
    return row;
  }

  private requireMes(): MesConnector {
    if (!this.mes) throw badInput('no MES is configured (mes.yml)');
    return this.mes;
  }
  /** The ERP, refusing up front (no FAILED run in the history) an operation its system has no equivalent for. */
  requireErp(op?: ErpOperation, what?: string): ErpConnector {
    if (!this.erp) throw badInput('no ERP is configured (erp.yml)');
    if (op && this.erp.unsupported?.has(op))
      throw notSupported(this.erp.system, what ?? op, `${this.erpConfig?.systemType} connector`);
    return this.erp;
  }

  async close(): Promise<void> {
    await this.mes?.close();
    await this.erp?.close();
  }
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
