import { z } from 'zod';
import { ConnectionSchema, lineId, loadSystemConfig, syncIntervalMinutes } from './connection.ts';

const WORK_ORDER_STATUSES = ['PLANNED', 'ACTIVE', 'COMPLETED', 'CANCELLED'] as const;

/** Where each of our work order fields is in a MES record: a property name or a dotted path. */
export const FieldMappingsSchema = z
  .object({
    workOrderNumber: z.string().min(1).default('OrderNumber'),
    lineId: z.string().min(1).default('LineCode'),
    productId: z.string().min(1).default('MaterialNumber'),
    plannedStart: z.string().min(1).default('PlannedStart'),
    plannedEnd: z.string().min(1).default('PlannedEnd'),
    plannedQuantity: z.string().min(1).default('TargetQuantity'),
    actualQuantity: z.string().min(1).default('ActualQuantity'),
    actualStart: z.string().min(1).default('ActualStart'),
    actualEnd: z.string().min(1).default('ActualEnd'),
    status: z.string().min(1).default('Status'),
    priority: z.string().min(1).default('Priority'),
    recipeCode: z.string().min(1).default('RecipeId'),
  })
  .strict();
export type FieldMappings = z.output<typeof FieldMappingsSchema>;

/** Where a recipe's fields are in the MES's recipe document. */
export const RecipeMappingsSchema = z
  .object({
    code: z.string().default('RecipeId'),
    version: z.string().default('Version'),
    productId: z.string().default('MaterialNumber'),
    lineId: z.string().default('LineCode'),
    targetCycleTimeSeconds: z.string().default('CycleTimeSeconds'),
    setupTimeSeconds: z.string().default('SetupTimeSeconds'),
    teardownTimeSeconds: z.string().default('TeardownTimeSeconds'),
    parameters: z.string().default('Parameters'),
  })
  .strict();
export type RecipeMappings = z.output<typeof RecipeMappingsSchema>;

/** Where a consumption record's fields are. */
export const ConsumptionMappingsSchema = z
  .object({
    id: z.string().default('ConsumptionId'),
    materialId: z.string().default('MaterialNumber'),
    quantity: z.string().default('Quantity'),
    unit: z.string().default('Unit'),
    lot: z.string().default('LotNumber'),
    consumedAt: z.string().default('ConsumedAt'),
  })
  .strict();
export type ConsumptionMappings = z.output<typeof ConsumptionMappingsSchema>;

const restSchema = z
  .object({
    /** Path templates under baseUrl; {id} is replaced (URL-encoded). */
    paths: z
      .object({
        schedules: z.string().default('/schedules'),
        workOrder: z.string().default('/work-orders/{id}'),
        recipe: z.string().default('/recipes/{id}'),
        consumption: z.string().default('/work-orders/{id}/consumption'),
        orderStatus: z.string().default('/work-orders/{id}/status'),
      })
      .strict()
      .default({
        schedules: '/schedules',
        workOrder: '/work-orders/{id}',
        recipe: '/recipes/{id}',
        consumption: '/work-orders/{id}/consumption',
        orderStatus: '/work-orders/{id}/status',
      }),
    /** Query parameter names of the schedules call. */
    params: z
      .object({ line: z.string().default('line'), from: z.string().default('from'), to: z.string().default('to') })
      .strict()
      .default({ line: 'line', from: 'from', to: 'to' }),
    paging: z
      .object({
        /** `offset`: limit/offset parameters; `nextLink`: follow the URL the body names until there is none. */
        style: z.enum(['offset', 'nextLink']).default('offset'),
        pageSize: z.number().int().min(1).max(10_000).default(500),
        limitParam: z.string().default('limit'),
        offsetParam: z.string().default('offset'),
        itemsPath: z.string().default('items'),
        nextPath: z.string().default('next'),
        /** A safety net against an upstream that never stops (each page is also checked for repeats). */
        maxPages: z.number().int().min(1).default(10_000),
      })
      .strict()
      .default({
        style: 'offset',
        pageSize: 500,
        limitParam: 'limit',
        offsetParam: 'offset',
        itemsPath: 'items',
        nextPath: 'next',
        maxPages: 10_000,
      }),
  })
  .strict();

const soapSchema = z
  .object({
    /** The MES's WSDL: an http(s) URL (fetched with the connection's auth) or a file path. */
    wsdl: z.string().min(1),
    /** Where calls go; defaults to the WSDL's soap:address (often an internal host name: set this then). */
    endpoint: z.url().optional(),
    /** MES equipment ids (HierarchyScope/EquipmentID of the ProductionSchedule) → our line ids (default: the same). */
    lineMap: z.record(z.string(), lineId).default({}),
    /** The WSDL operations carrying the B2MML transactions. */
    operations: z
      .object({
        /** GetProductionSchedule in, ShowProductionSchedule out. */
        schedule: z.string().min(1).default('GetProductionSchedule'),
        /** ProcessProductionPerformance in, AcknowledgeProductionPerformance out. */
        performance: z.string().min(1).default('ProcessProductionPerformance'),
      })
      .strict()
      .default({ schedule: 'GetProductionSchedule', performance: 'ProcessProductionPerformance' }),
    /** ApplicationArea/Sender/LogicalID of what the hub sends. */
    senderId: z.string().min(1).default('OEE-HUB'),
  })
  .strict();

/** MES status values → ours, for a JSON REST MES. */
const REST_STATUS_MAP = {
  PLANNED: 'PLANNED',
  RELEASED: 'PLANNED',
  SCHEDULED: 'PLANNED',
  IN_PROGRESS: 'ACTIVE',
  RUNNING: 'ACTIVE',
  ACTIVE: 'ACTIVE',
  COMPLETED: 'COMPLETED',
  DONE: 'COMPLETED',
  CLOSED: 'COMPLETED',
  CANCELLED: 'CANCELLED',
  CANCELED: 'CANCELLED',
} as const;
/**
 * B2MML RequestState / ResponseState values → ours. The first key of each status is what the hub reports back
 * (Released, Running, Completed, Aborted). Held is an order started and paused: ACTIVE in our terms.
 */
const B2MML_STATUS_MAP = {
  Released: 'PLANNED',
  Forecast: 'PLANNED',
  Ready: 'PLANNED',
  Running: 'ACTIVE',
  Restarted: 'ACTIVE',
  Held: 'ACTIVE',
  Completed: 'COMPLETED',
  Aborted: 'CANCELLED',
} as const;

/** `mes.yml`: the plant's MES, which lines it serves, how often schedules sync and how its names map to ours. */
export const MesConfigSchema = z
  .object({
    mes: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * `rest`: any JSON REST MES (configured paths and field mappings); `soap`: B2MML V0600 over SOAP (WSDL-driven).
         */
        systemType: z.enum(['rest', 'soap']),
        /** The name sync history and audit entries show (e.g. "SAP-ME-PLANT1"). */
        name: z.string().min(1).max(64).default('MES'),
        connection: ConnectionSchema,
        sync: z
          .object({
            scheduleSyncIntervalMinutes: syncIntervalMinutes.default(15),
            autoSyncEnabled: z.boolean().default(true),
            /** The window a scheduled sync fetches: from now - lookBackHours to now + horizonDays. */
            horizonDays: z.number().min(0).max(90).default(7),
            lookBackHours: z.number().min(0).max(720).default(24),
            bidirectionalUpdates: z.boolean().default(true),
            /** Rows per upsert statement. */
            batchSize: z.number().int().min(1).max(20_000).default(5_000),
            /** A FAILED scheduled sync is retried this often (pg-boss, exponential backoff from retryDelaySeconds). */
            retryLimit: z.number().int().min(0).max(50).default(3),
            retryDelaySeconds: z.number().int().min(1).default(60),
            /**
             * Order status reports are retried until the MES accepts them (no limit: a report is never dropped), after
             * outboundRetryDelaySeconds·2ⁿ⁻¹, at most outboundRetryMaxDelaySeconds apart. Only a refusal by the MES
             * (4xx, SOAP Client fault, B2MML Rejected) ends one, as REJECTED.
             */
            outboundRetryDelaySeconds: z.number().min(0.1).default(10),
            outboundRetryMaxDelaySeconds: z.number().min(0.1).default(600),
          })
          .strict()
          .default({
            scheduleSyncIntervalMinutes: 15,
            autoSyncEnabled: true,
            horizonDays: 7,
            lookBackHours: 24,
            bidirectionalUpdates: true,
            batchSize: 5_000,
            retryLimit: 3,
            retryDelaySeconds: 60,
            outboundRetryDelaySeconds: 10,
            outboundRetryMaxDelaySeconds: 600,
          }),
        /** The lines this MES serves; schedules sync for each of them. */
        lines: z.array(lineId).min(1),
        fieldMappings: FieldMappingsSchema.default(FieldMappingsSchema.parse({})),
        recipeMappings: RecipeMappingsSchema.default(RecipeMappingsSchema.parse({})),
        consumptionMappings: ConsumptionMappingsSchema.default(ConsumptionMappingsSchema.parse({})),
        /**
         * MES status values → ours; unknown values are a record error. Default: by systemType (REST or B2MML names).
         */
        statusMap: z.record(z.string(), z.enum(WORK_ORDER_STATUSES)).optional(),
        rest: restSchema.optional(),
        soap: soapSchema.optional(),
      })
      .strict()
      .superRefine((m, ctx) => {
        if (m.systemType === 'soap' && !m.soap)
          ctx.addIssue({ code: 'custom', path: ['soap'], message: 'is required when systemType is soap' });
      })
      .transform((m) => ({
        ...m,
        statusMap: m.statusMap ?? { ...(m.systemType === 'soap' ? B2MML_STATUS_MAP : REST_STATUS_MAP) },
      }))
      .optional(),
  })
  .strict();

export type MesConfig = NonNullable<z.output<typeof MesConfigSchema>['mes']>;
export type MesRestConfig = z.output<typeof restSchema>;
export type MesSoapConfig = z.output<typeof soapSchema>;
export const defaultRestConfig = (): MesRestConfig => restSchema.parse({});

/** Loads `mes.yml` from the config directory; no file (or `enabled: false`) means no MES. */
export function loadMesConfig(dir: string | undefined, env: NodeJS.ProcessEnv): MesConfig | undefined {
  return loadSystemConfig(dir, 'mes', MesConfigSchema, env);
}
