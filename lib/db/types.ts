import type { ColumnType, Generated, JSONColumnType } from 'kysely';

/**
 * Table types, written once here and matched to the migrations (camelCase through CamelCasePlugin).
 * `Stamp` columns are set by Postgres on insert and may be set by updates.
 */
type Stamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Ts = ColumnType<Date, Date | string, Date | string>;
type TsNull = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface SitesTable {
  id: string;
  name: string;
  timezone: Generated<string>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface AreasTable {
  id: string;
  siteId: string;
  name: string;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface LinesTable {
  id: string;
  siteId: string;
  areaId: string | null;
  name: string;
  isActive: Generated<boolean>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface MachinesTable {
  id: string;
  lineId: string;
  name: string;
  type: string | null;
  idealCycleTimeSeconds: number | null;
  isActive: Generated<boolean>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface ProductsTable {
  id: string;
  name: string;
  family: string | null;
  sku: string | null;
  standardCycleTimeSeconds: number | null;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface RecipesTable {
  id: Generated<string>;
  code: string;
  version: number;
  productId: string;
  lineId: string | null;
  targetCycleTimeSeconds: number;
  setupTimeSeconds: Generated<number>;
  teardownTimeSeconds: Generated<number>;
  parameters: JSONColumnType<Record<string, unknown>, string | undefined, string>;
  isActive: Generated<boolean>;
  createdAt: Stamp;
}
export type WorkOrderStatus = 'PLANNED' | 'ACTIVE' | 'COMPLETED' | 'CANCELLED';
export interface WorkOrdersTable {
  id: Generated<string>;
  number: string;
  lineId: string;
  recipeId: string | null;
  productId: string | null;
  plannedStart: Ts;
  plannedEnd: Ts;
  actualStart: TsNull;
  actualEnd: TsNull;
  plannedQuantity: number;
  actualQuantity: Generated<number>;
  status: Generated<WorkOrderStatus>;
  priority: Generated<number>;
  source: Generated<string>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface ShiftsTable {
  id: Generated<string>;
  lineId: string;
  shiftDate: ColumnType<string, string, string>;
  shiftNumber: number;
  operatorId: string;
  operatorName: string | null;
  role: Generated<string>;
  startsAt: Ts;
  endsAt: Ts;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export type SensorProtocol = 'MQTT' | 'SPARKPLUG' | 'HTTP' | 'HISTORIAN' | 'IMPORT';
export interface SensorsTable {
  id: string;
  name: string;
  type: string;
  unit: string;
  machineId: string;
  protocol: SensorProtocol;
  topic: string | null;
  endpoint: string | null;
  pollIntervalSeconds: number | null;
  minExpected: number | null;
  maxExpected: number | null;
  isActive: Generated<boolean>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface TagMappingsTable {
  id: Generated<string>;
  historianSystem: 'PI' | 'WONDERWARE';
  /** historian.yml's name of the historian, when the mapping names one (null: by historian system only). */
  historian: string | null;
  /** The historian's handle for the tag (PI WebId, AVEVA FQN), as resolved when the mapping was made. */
  ref: string | null;
  /** The tag's type as the historian gave it when the mapping was made (PI PointType, AVEVA TagType). */
  tagType: string | null;
  tag: string;
  machineId: string;
  signalType: string;
  unit: string;
  scaleFactor: Generated<number>;
  valueOffset: Generated<number>;
  isActive: Generated<boolean>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export type BackfillStatus = 'PENDING' | 'RUNNING' | 'PAUSED' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type BackfillTaskStatus = 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
/** int8 counters arrive as strings (pg); job sizes stay far below 2^53. */
type Count = ColumnType<string, number | undefined, number>;
export interface BackfillJobsTable {
  id: Generated<string>;
  historian: string;
  rangeFrom: Ts;
  rangeTo: Ts;
  priority: Generated<number>;
  status: Generated<BackfillStatus>;
  createdBy: string | null;
  createdAt: Stamp;
  startedAt: TsNull;
  completedAt: TsNull;
  error: string | null;
  worker: string | null;
  leaseUntil: TsNull;
  runStartedAt: TsNull;
  runFetched: Count;
}
export interface BackfillTasksTable {
  jobId: string;
  tagMappingId: string;
  status: Generated<BackfillTaskStatus>;
  position: TsNull;
  fetched: Count;
  imported: Count;
  rejected: Count;
  duplicate: Count;
  error: string | null;
  updatedAt: Stamp;
}
export interface TagWatermarksTable {
  tagMappingId: string;
  /** A tstzmultirange, as Postgres prints it; read through the repo's functions, not parsed by hand. */
  fetched: ColumnType<string, string | undefined, string>;
  updatedAt: Stamp;
}
export interface StatesTable {
  seriesId: number;
  ts: Ts;
  code: number;
  name: string;
  quality: number;
  source: number;
}
export interface RangeRulesTable {
  id: Generated<string>;
  machineId: string;
  sensorId: string | null;
  signalType: string;
  minValue: number;
  maxValue: number;
  unit: string | null;
  action: Generated<'ALERT' | 'REJECT' | 'DEGRADE'>;
  isActive: Generated<boolean>;
  createdAt: Stamp;
  updatedAt: Stamp;
}
export interface AlertsTable {
  id: ColumnType<string, never, never>;
  machineId: string;
  sensorId: string | null;
  type: 'OUT_OF_RANGE' | 'DUPLICATE' | 'GAP' | 'STALE' | 'SOURCE_QUALITY';
  severity: Generated<'INFO' | 'WARNING' | 'CRITICAL'>;
  ts: Ts;
  metric: string;
  value: number | null;
  expectedMin: number | null;
  expectedMax: number | null;
  message: string | null;
  acknowledgedAt: TsNull;
  acknowledgedBy: string | null;
  createdAt: Stamp;
}
export interface SeriesTable {
  id: Generated<number>;
  machineId: string;
  signal: string;
  unit: string | null;
  sensorId: string | null;
  tagMappingId: string | null;
}
export interface ReadingsTable {
  seriesId: number;
  ts: Ts;
  value: number;
  quality: Generated<number>;
  source: number;
  workOrderId: string | null;
  shiftId: string | null;
  recipeId: string | null;
  operatorId: string | null;
}
export interface RollupTable {
  seriesId: number;
  bucket: Ts;
  n: number;
  sum: number;
  min: number;
  max: number;
}
export interface LatestTable {
  seriesId: number;
  ts: Ts;
  value: number;
  quality: number;
}
export interface AuditLogTable {
  id: ColumnType<string, never, never>;
  at: Stamp;
  actor: string;
  roles: string[];
  service: string;
  operation: string;
  target: string | null;
  outcome: 'SUCCESS' | 'FAILURE';
  errorCode: string | null;
  details: JSONColumnType<Record<string, unknown>, string | undefined, string>;
  requestId: string | null;
}

export interface DeadLettersTable {
  id: ColumnType<string, never, never>;
  receivedAt: Stamp;
  source: number;
  reason: string;
  detail: string;
  topic: string | null;
  payload: Buffer | null;
  sensorId: string | null;
  machineId: string | null;
  /** What it refuses, where a source may send it again (a historian tag and timestamp): stored once. */
  dedupeKey: string | null;
}
export interface LossEventsTable {
  id: ColumnType<string, never, never>;
  at: Stamp;
  source: number;
  kind: string;
  detail: string;
  expected: number | null;
  got: number | null;
  stream: string | null;
}

export interface HttpEndpointsTable {
  name: string;
  url: string;
  intervalSeconds: number;
  lastSuccessAt: TsNull;
  lastFailureAt: TsNull;
  lastError: string | null;
  lastErrorCode: string | null;
  consecutiveFailures: number;
  lastDurationMs: number | null;
  readings: ColumnType<string, number, number>;
  deadLetters: ColumnType<string, number, number>;
  skippedPolls: ColumnType<string, number, number>;
  pollingSince: TsNull;
  nextPollAt: TsNull;
  worker: string;
  updatedAt: Stamp;
}

export interface TelemetrySourcesTable {
  worker: string;
  name: string;
  kind: string;
  state: 'STARTING' | 'RUNNING' | 'DEGRADED' | 'STOPPED';
  ready: boolean;
  problem: string | null;
  counters: ColumnType<Record<string, number>, string, string>;
  updatedAt: Stamp;
}

export interface Database {
  'production.sites': SitesTable;
  'production.areas': AreasTable;
  'production.lines': LinesTable;
  'production.machines': MachinesTable;
  'production.products': ProductsTable;
  'production.recipes': RecipesTable;
  'production.workOrders': WorkOrdersTable;
  'production.shifts': ShiftsTable;
  'iot.sensors': SensorsTable;
  'iot.httpEndpoints': HttpEndpointsTable;
  'iot.telemetrySources': TelemetrySourcesTable;
  'historian.tagMappings': TagMappingsTable;
  'historian.backfillJobs': BackfillJobsTable;
  'historian.backfillTasks': BackfillTasksTable;
  'historian.tagWatermarks': TagWatermarksTable;
  'quality.rangeRules': RangeRulesTable;
  'quality.alerts': AlertsTable;
  'quality.deadLetters': DeadLettersTable;
  'quality.lossEvents': LossEventsTable;
  'telemetry.series': SeriesTable;
  'telemetry.readings': ReadingsTable;
  'telemetry.states': StatesTable;
  'telemetry.rollup_1m': RollupTable;
  'telemetry.rollup_1h': RollupTable;
  'telemetry.latest': LatestTable;
  'audit.log': AuditLogTable;
}
