import type { ColumnType, Generated, JSONColumnType, Kysely, Selectable } from 'kysely';
import type { Database, Db } from '../../../lib/db/index.ts';

/** Table types of migration 0004 (camelCase through CamelCasePlugin); `idb` adds them to the hub's Db. */
type Stamp = ColumnType<Date, Date | string | undefined, Date | string>;
type TsNull = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Num = ColumnType<string, number | string, number | string>;
type NumNull = ColumnType<string | null, number | string | null | undefined, number | string | null>;

export type SyncStatus = 'RUNNING' | 'SUCCESS' | 'PARTIAL' | 'FAILED';
export type SyncKind = 'SCHEDULES' | 'MATERIALS' | 'LABOUR' | 'CONSUMPTION';
export type SystemKind = 'MES' | 'ERP';
export type OutboundState = 'PENDING' | 'SENT' | 'REJECTED';

export interface SyncRunsTable {
  id: ColumnType<string, never, never>;
  system: string;
  systemKind: SystemKind;
  kind: SyncKind;
  lineId: string | null;
  workOrderId: string | null;
  rangeFrom: TsNull;
  rangeTo: TsNull;
  trigger: 'MANUAL' | 'SCHEDULED';
  requestedBy: string;
  status: Generated<SyncStatus>;
  fetched: Generated<number>;
  created: Generated<number>;
  updated: Generated<number>;
  unchanged: Generated<number>;
  rejected: Generated<number>;
  errors: JSONColumnType<{ key: string | null; message: string }[], string | undefined, string>;
  errorCount: Generated<number>;
  startedAt: Stamp;
  finishedAt: TsNull;
  durationMs: number | null;
}
export interface RecipeDownloadsTable {
  id: ColumnType<string, never, never>;
  system: string;
  mesRecipeId: string;
  mesVersion: string;
  recipeId: string;
  createdVersion: boolean;
  downloadedBy: string;
  downloadedAt: Stamp;
}
export interface MaterialsTable {
  id: string;
  description: string | null;
  type: string | null;
  baseUnit: string | null;
  materialGroup: string | null;
  grossWeight: NumNull;
  netWeight: NumNull;
  weightUnit: string | null;
  isMarkedForDeletion: boolean;
  sourceSystem: string;
  sourceChangedAt: TsNull;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface LabourBookingsTable {
  id: ColumnType<string, never, never>;
  sourceSystem: string;
  externalId: string;
  costCenter: string;
  workCenter: string | null;
  lineId: string | null;
  workOrderNumber: string | null;
  workDate: ColumnType<string, string, string>;
  hours: Num;
  ratePerHour: NumNull;
  cost: NumNull;
  currency: string | null;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface MaterialConsumptionTable {
  id: ColumnType<string, never, never>;
  sourceSystem: string;
  externalId: string;
  workOrderId: string;
  materialId: string;
  quantity: Num;
  unit: string;
  lot: string | null;
  consumedAt: ColumnType<Date, Date | string, Date | string>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface OutboundUpdatesTable {
  id: Generated<string>;
  idempotencyKey: string;
  system: string;
  workOrderId: string;
  workOrderNumber: string;
  lineId: string;
  status: 'PLANNED' | 'ACTIVE' | 'COMPLETED' | 'CANCELLED';
  actualQuantity: number;
  actualStart: TsNull;
  actualEnd: TsNull;
  state: Generated<OutboundState>;
  attempts: Generated<number>;
  lastError: string | null;
  lastAttemptAt: TsNull;
  duplicate: Generated<boolean>;
  requestedBy: string;
  createdAt: Stamp;
  sentAt: TsNull;
  // 0005: claims, backoff, definitive refusals.
  nextAttemptAt: Stamp;
  claimedUntil: TsNull;
  claimToken: string | null;
  rejectedAt: TsNull;
}

export interface ErpPostingsTable {
  idempotencyKey: string;
  system: string;
  workOrderId: string;
  materialId: string;
  quantity: Num;
  unit: string;
  lot: string | null;
  state: Generated<'POSTING' | 'POSTED' | 'UNCERTAIN'>;
  documentId: string | null;
  consumptionId: string | null;
  lastError: string | null;
  requestedBy: string;
  createdAt: Stamp;
}

export type IntegrationTables = {
  'production.erpPostings': ErpPostingsTable;
  'production.syncRuns': SyncRunsTable;
  'production.recipeDownloads': RecipeDownloadsTable;
  'production.materials': MaterialsTable;
  'production.labourBookings': LabourBookingsTable;
  'production.materialConsumption': MaterialConsumptionTable;
  'production.outboundUpdates': OutboundUpdatesTable;
};

export type IDb = Kysely<Database & IntegrationTables>;
/** The hub's Db, typed with these tables too (same pool, same plugins). */
export const idb = (db: Db): IDb => db.withTables<IntegrationTables>();

export type SyncRunRow = Selectable<SyncRunsTable>;
export type RecipeDownloadRow = Selectable<RecipeDownloadsTable>;
export type MaterialRow = Selectable<MaterialsTable>;
export type LabourBookingRow = Selectable<LabourBookingsTable>;
export type MaterialConsumptionRow = Selectable<MaterialConsumptionTable>;
export type OutboundUpdateRow = Selectable<OutboundUpdatesTable>;
export type ErpPostingRow = Selectable<ErpPostingsTable>;
/** A work order with its planned and actual quantity and duration, as the variance query returns it. */
export interface VarianceRow {
  workOrderId: string;
  number: string;
  lineId: string;
  status: string;
  plannedQuantity: number;
  actualQuantity: number;
  plannedStart: Date;
  plannedEnd: Date;
  actualStart: Date | null;
  actualEnd: Date | null;
}
