import { z } from 'zod';
import { ConnectionSchema, lineId, loadSystemConfig, syncIntervalMinutes } from './connection.ts';

const sapSchema = z
  .object({
    /** ProductionPlant of the orders to read. */
    plant: z.string().min(1),
    /** Rows asked per page ($top). RAP services cap pages at 5000 and say so with __next; both are followed. */
    pageSize: z.number().int().min(1).max(5_000).default(1_000),
    /** The A_ProductionOrder_2 property naming the line (its values are mapped by lineMap). */
    lineField: z.string().min(1).default('ProductionSupervisor'),
    /** Goods movement type posted for consumption (261: goods issue for a production order). */
    goodsIssueMovementType: z.string().default('261'),
    storageLocation: z.string().optional(),
    /**
     * Labour: confirmations (API_PROD_ORDER_CONFIRMATION_2_SRV) give hours per work centre; the money comes from
     * these rates per work centre (SAP prices activities per cost centre, which this API does not return).
     */
    labourRates: z
      .record(
        z.string(),
        z
          .object({ costCenter: z.string().min(1), ratePerHour: z.number().min(0), currency: z.string().length(3) })
          .strict(),
      )
      .default({}),
  })
  .strict();

const oracleSchema = z
  .object({
    /** The REST version segment of /fscmRestApi/resources/<version>/. */
    version: z.string().default('11.13.18.05'),
    organizationCode: z.string().min(1),
    pageSize: z.number().int().min(1).max(500).default(500),
    /** The workOrders property naming the line (values mapped by lineMap). */
    lineField: z.string().min(1).default('WorkAreaCode'),
  })
  .strict();

/** `erp.yml`: the plant's ERP (SAP S/4HANA OData V2 or Oracle Fusion REST), its lines and its sync cadence. */
export const ErpConfigSchema = z
  .object({
    erp: z
      .object({
        enabled: z.boolean().default(true),
        systemType: z.enum(['sap_odata', 'oracle_rest']),
        name: z.string().min(1).max(64).default('ERP'),
        connection: ConnectionSchema,
        /** ERP line/work-centre values → our line ids. Orders whose value is not mapped are skipped. */
        lineMap: z.record(z.string(), lineId).default({}),
        sync: z
          .object({
            /** Production orders as schedules for the mapped lines (when no MES serves the line). */
            scheduleSyncIntervalMinutes: syncIntervalMinutes.default(60),
            materialSyncIntervalMinutes: syncIntervalMinutes.default(60),
            autoSyncEnabled: z.boolean().default(true),
            horizonDays: z.number().min(0).max(90).default(7),
            lookBackHours: z.number().min(0).max(720).default(24),
            batchSize: z.number().int().min(1).max(20_000).default(5_000),
            retryLimit: z.number().int().min(0).max(50).default(3),
            retryDelaySeconds: z.number().int().min(1).default(60),
          })
          .strict()
          .default({
            scheduleSyncIntervalMinutes: 60,
            materialSyncIntervalMinutes: 60,
            autoSyncEnabled: true,
            horizonDays: 7,
            lookBackHours: 24,
            batchSize: 5_000,
            retryLimit: 3,
            retryDelaySeconds: 60,
          }),
        sap: sapSchema.optional(),
        oracle: oracleSchema.optional(),
      })
      .strict()
      .superRefine((e, ctx) => {
        if (e.systemType === 'sap_odata' && !e.sap)
          ctx.addIssue({ code: 'custom', path: ['sap'], message: 'is required when systemType is sap_odata' });
        if (e.systemType === 'oracle_rest' && !e.oracle)
          ctx.addIssue({ code: 'custom', path: ['oracle'], message: 'is required when systemType is oracle_rest' });
      })
      .optional(),
  })
  .strict();

export type ErpConfig = NonNullable<z.output<typeof ErpConfigSchema>['erp']>;
export type SapConfig = z.output<typeof sapSchema>;
export type OracleConfig = z.output<typeof oracleSchema>;

/** Loads `erp.yml` from the config directory; no file (or `enabled: false`) means no ERP. */
export function loadErpConfig(dir: string | undefined, env: NodeJS.ProcessEnv): ErpConfig | undefined {
  return loadSystemConfig(dir, 'erp', ErpConfigSchema, env);
}
