import { z } from 'zod';
import { JsonMappingSchema } from './json-mapping.ts';
import { HttpPollingConfigSchema } from './http-polling.ts';
import { compileTopicFilter } from '../mqtt/topic-filter.ts';
import { loadYamlConfig } from './load.ts';

const topicFilter = z
  .string()
  .min(1)
  .superRefine((f, ctx) => {
    try {
      compileTopicFilter(f);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });

/** Where the live channel is published by default (lib/telemetry/live.ts describes the channel). */
export const LIVE_PREFIX = 'oee-hub/live';

/** `iot.yml`: where live telemetry comes from and how the one pipeline batches and validates it. */
export const IotConfigSchema = z
  .object({
    mqtt: z
      .object({
        enabled: z.boolean().default(true),
        /** Default: MQTT_URL / hub.yml mqtt.url. */
        url: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        /** Stable per worker: the broker keeps its persistent session (and queued messages) under it. */
        clientId: z.string().min(1).default('oee-hub-ingest'),
        /** Workers sharing one group split the messages between them ($share/<group>/<pattern>). */
        sharedGroup: z
          .string()
          .regex(/^[^/+#]+$/, 'must not contain / + #')
          .optional(),
        sessionExpirySeconds: z
          .number()
          .int()
          .min(1)
          .default(7 * 86_400),
        /** At most 30,000: see MAX_RECEIVE_WINDOW in lib/mqtt/ingest-client.ts (16-bit packet ids). */
        receiveMaximum: z.number().int().min(1).max(30_000).default(20_000),
        maxPayloadBytes: z.number().int().min(64).default(65_536),
        topics: z
          .array(
            z.object({ pattern: topicFilter, sensorType: z.string().optional(), mapping: JsonMappingSchema }).strict(),
          )
          .default([]),
        sparkplug: z
          .object({
            enabled: z.boolean().default(false),
            /** Sparkplug groups to follow ('+' = all). */
            groups: z.array(z.string().min(1)).default(['+']),
            /** The hub sensor id of a metric. */
            sensorId: z.string().default('{group}/{node}/{device}/{metric}'),
            rebirthIntervalSeconds: z.number().min(0).default(5),
            /**
             * The host's own MQTT session (default: mqtt.clientId + "-sparkplug", or mqtt.clientId itself when there
             * are no JSON topics); stable per worker, like clientId.
             */
            clientId: z.string().min(1).optional(),
          })
          .strict()
          .default({
            enabled: false,
            groups: ['+'],
            sensorId: '{group}/{node}/{device}/{metric}',
            rebirthIntervalSeconds: 5,
          }),
      })
      .strict()
      .optional(),
    http: HttpPollingConfigSchema.default({ enabled: false, endpoints: [] }),
    /** Committed readings and new alerts are published here (one message per line per batch) for live views. */
    live: z
      .object({
        enabled: z.boolean().default(true),
        topicPrefix: z
          .string()
          .regex(/^[^+#]+$/)
          .default(LIVE_PREFIX),
        /** `listened`: only while a consumer has announced itself (see lib/telemetry/live.ts); `always`: regardless. */
        publish: z.enum(['listened', 'always']).default('listened'),
      })
      .strict()
      .default({ enabled: true, topicPrefix: LIVE_PREFIX, publish: 'listened' }),
    pipeline: z
      .object({
        batchMaxRows: z.number().int().min(1).max(50_000).default(10_000),
        batchMaxDelayMs: z.number().int().min(0).max(10_000).default(20),
        maxQueuedRows: z.number().int().min(1).default(50_000),
        duplicateWindowMs: z.number().int().min(0).default(0),
        maxFutureSeconds: z.number().int().min(0).default(300),
        commitConcurrency: z.number().int().min(1).max(8).default(2),
      })
      .strict()
      .default({
        batchMaxRows: 10_000,
        batchMaxDelayMs: 20,
        maxQueuedRows: 50_000,
        duplicateWindowMs: 0,
        maxFutureSeconds: 300,
        commitConcurrency: 2,
      }),
  })
  .strict();

export type IotConfig = z.output<typeof IotConfigSchema>;

export function loadIotConfig(dir: string | undefined, env: NodeJS.ProcessEnv): IotConfig {
  return loadYamlConfig(dir, 'iot.yml', IotConfigSchema, env);
}
