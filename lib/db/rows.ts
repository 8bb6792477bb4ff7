import type { Selectable } from 'kysely';
import type * as T from './types.ts';

/** Row types as repositories return them; codegen maps GraphQL types onto these (codegen.ts `mappers`). */
export type SiteRow = Selectable<T.SitesTable>;
export type AreaRow = Selectable<T.AreasTable>;
export type LineRow = Selectable<T.LinesTable>;
export type MachineRow = Selectable<T.MachinesTable>;
export type ProductRow = Selectable<T.ProductsTable>;
export type RecipeRow = Selectable<T.RecipesTable>;
export type WorkOrderRow = Selectable<T.WorkOrdersTable>;
export type ShiftRow = Selectable<T.ShiftsTable>;
export type AuditRow = Selectable<T.AuditLogTable>;
export type SensorRow = Selectable<T.SensorsTable>;
export type HttpEndpointRow = Selectable<T.HttpEndpointsTable>;
export type TelemetrySourceRow = Selectable<T.TelemetrySourcesTable>;
export type TagMappingRow = Selectable<T.TagMappingsTable>;
export type BackfillJobRow = Selectable<T.BackfillJobsTable>;
export type BackfillTaskRow = Selectable<T.BackfillTasksTable>;
/** A tag mapping's fetched ranges, oldest first (historian.tag_watermarks read as ranges). */
export interface WatermarksRow {
  tagMappingId: string;
  ranges: { from: Date; to: Date }[];
}
export type RangeRuleRow = Selectable<T.RangeRulesTable>;
export type AlertRow = Selectable<T.AlertsTable>;
export type DeadLetterRow = Selectable<T.DeadLettersTable>;
export type LossEventRow = Selectable<T.LossEventsTable>;
/** A reading joined with its series (sensor and machine). */
export interface ReadingRow {
  sensorId: string;
  machineId: string;
  ts: Date;
  value: number;
  quality: number;
  source: number;
  workOrderId: string | null;
  operatorId: string | null;
}
/** An entity known only by its key, as another subgraph hands it over. */
export interface EntityRef {
  id: string;
}

/** One sensor's aggregated points, as the rollup query groups them. */
export interface AggregatedSeriesRow {
  sensorId: string;
  machineId: string;
  signal: string;
  unit: string;
  points: {
    bucket: Date;
    avg: number;
    min: number;
    max: number;
    count: number;
    /** SHIFT buckets: the shift's end and number. */
    bucketEnd?: Date | null;
    shiftNumber?: number | null;
  }[];
}
