import type { ConsumptionRecord, RecordPage, ScheduleRecord } from '../mes/types.ts';

/** The one ERP interface; records are in the hub's terms, as for the MES. */
export interface MaterialRecord {
  id: string;
  description: string | null;
  type: string | null;
  baseUnit: string | null;
  group: string | null;
  grossWeight: number | null;
  netWeight: number | null;
  weightUnit: string | null;
  isMarkedForDeletion: boolean;
  changedAt: Date | null;
}

export interface LabourCostRecord {
  /** The upstream's id of the booking (confirmation, transaction): repeated syncs update, never duplicate. */
  externalId: string;
  costCenter: string;
  workCenter: string | null;
  lineId: string | null;
  workOrderNumber: string | null;
  workDate: string;
  hours: number;
  ratePerHour: number | null;
  cost: number | null;
  currency: string | null;
}

export interface ConsumptionPosting {
  workOrderNumber: string;
  materialId: string;
  quantity: number;
  unit: string;
  lot: string | null;
  postedAt: Date;
}

/** ERP calls a system may have no equivalent for. */
export type ErpOperation = 'materials' | 'labour' | 'consumption' | 'postConsumption';

export interface ErpConnector {
  readonly system: string;
  /**
   * What this system cannot do (the calls throw NOT_SUPPORTED); the service refuses them up front, the jobs skip them.
   */
  readonly unsupported?: ReadonlySet<ErpOperation>;
  /** The material master, page by page. */
  materials(): AsyncIterable<RecordPage<MaterialRecord>>;
  /** Production orders of a line whose window overlaps [from, to), as work orders. */
  productionOrders(lineId: string, from: Date, to: Date): AsyncIterable<RecordPage<ScheduleRecord>>;
  /** Labour hours and cost booked in [from, to). */
  labourCosts(from: Date, to: Date): AsyncIterable<RecordPage<LabourCostRecord>>;
  /** Goods issued to a production order. */
  inventoryConsumption(workOrderNumber: string): Promise<ConsumptionRecord[]>;
  /** Posts a goods issue to a production order; resolves with the ERP's document id. */
  postConsumption(c: ConsumptionPosting): Promise<{ documentId: string }>;
  close(): Promise<void>;
}
