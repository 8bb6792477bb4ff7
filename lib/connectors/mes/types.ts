/**
 * The one MES interface and the records every MES connector hands over, already in the hub's terms
 * (our line ids, our statuses, Dates, numbers). Connectors translate wire formats; syncs only see these.
 */
export type WorkOrderStatus = 'PLANNED' | 'ACTIVE' | 'COMPLETED' | 'CANCELLED';

/** A work order (production schedule entry) as the hub stores it. */
export interface ScheduleRecord {
  number: string;
  lineId: string;
  productId: string | null;
  recipeCode: string | null;
  plannedStart: Date;
  plannedEnd: Date;
  plannedQuantity: number;
  actualQuantity: number | null;
  actualStart: Date | null;
  actualEnd: Date | null;
  status: WorkOrderStatus;
  priority: number;
}

/** A record the upstream sent that could not be used (kept out, reported in the sync history). */
export interface RecordError {
  key: string;
  message: string;
}

/** One page of a paged read: the usable records and the unusable ones. */
export interface RecordPage<T> {
  records: T[];
  errors: RecordError[];
}

export interface MesRecipe {
  code: string;
  version: string;
  productId: string;
  lineId: string | null;
  targetCycleTimeSeconds: number;
  setupTimeSeconds: number;
  teardownTimeSeconds: number;
  parameters: Record<string, unknown>;
}

export interface ConsumptionRecord {
  /** The upstream's id of the consumption (material document item, MES booking): the idempotency key. */
  externalId: string;
  workOrderNumber: string;
  materialId: string;
  quantity: number;
  unit: string;
  lot: string | null;
  consumedAt: Date;
}

export interface OrderStatusUpdate {
  /** The same key on every retry: the MES applies an update once however often it arrives. */
  idempotencyKey: string;
  workOrderNumber: string;
  lineId: string;
  status: WorkOrderStatus;
  actualQuantity: number;
  actualStart: Date | null;
  actualEnd: Date | null;
  reportedAt: Date;
}

export interface MesConnector {
  /** The configured system name (history, audit). */
  readonly system: string;
  /** Work orders planned on a line in [from, to), page by page (a failure mid-way keeps the pages read). */
  schedules(lineId: string, from: Date, to: Date): AsyncIterable<RecordPage<ScheduleRecord>>;
  workOrder(number: string): Promise<ScheduleRecord | null>;
  recipe(id: string): Promise<MesRecipe>;
  materialConsumption(workOrderNumber: string): Promise<ConsumptionRecord[]>;
  /** Sends a status report; resolves when the MES has accepted it (a replay of the same key included). */
  updateOrderStatus(u: OrderStatusUpdate): Promise<{ duplicate: boolean }>;
  close(): Promise<void>;
}
