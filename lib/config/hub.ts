import { z } from 'zod';
import { loadYamlConfig } from './load.ts';
import { LIVE_PREFIX } from '../telemetry/live.ts';

export const SUBGRAPHS = ['production', 'historian', 'iot', 'quality'] as const;
export type SubgraphName = (typeof SUBGRAPHS)[number];

const port = z.coerce.number().int().min(0).max(65535);
const secret = z.string().min(32, 'must be at least 32 characters');

const subgraphSchema = z.object({ host: z.string().default('127.0.0.1'), port: port.default(0) }).strict();

/** `hub.yml`: where the hub's services listen, its store, its broker and how it authenticates. */
export const HubConfigSchema = z
  .object({
    dataDir: z.string().default('.hub-data'),
    database: z
      .object({ url: z.string().optional(), poolSize: z.coerce.number().int().min(1).max(200).default(10) })
      .strict()
      .default({ poolSize: 10 }),
    mqtt: z
      .object({
        url: z.string().optional(),
        /** Where ingest publishes committed readings and alerts (iot.yml live.topicPrefix); subscriptions read it. */
        liveTopicPrefix: z.string().regex(/^[^+#]+$/).default(LIVE_PREFIX),
      })
      .strict()
      .default({ liveTopicPrefix: LIVE_PREFIX }),
    auth: z
      .object({
        jwt: z
          .object({
            secret: secret.optional(),
            jwksUrl: z.url().optional(),
            issuer: z.string().optional(),
            audience: z.string().optional(),
          })
          .strict()
          .default({}),
        /** Signs the gateway's calls to subgraphs; subgraphs refuse anything not signed with it. */
        internalSecret: secret.optional(),
        /** Issue a development token at start (embedded mode only). */
        devTokens: z.boolean().default(false),
      })
      .strict()
      .default({ jwt: {}, devTokens: false }),
    gateway: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: port.default(4000),
        /** Subgraph URLs when they run as separate processes; default: the in-process ones. */
        subgraphUrls: z.partialRecord(z.enum(SUBGRAPHS), z.url()).default({}),
        maxQueryDepth: z.coerce.number().int().min(1).default(12),
      })
      .strict()
      .default({ host: '0.0.0.0', port: 4000, subgraphUrls: {}, maxQueryDepth: 12 }),
    subgraphs: z
      .object(Object.fromEntries(SUBGRAPHS.map((s) => [s, subgraphSchema.default({ host: '127.0.0.1', port: 0 })])) as Record<
        SubgraphName,
        z.ZodDefault<typeof subgraphSchema>
      >)
      .strict()
      .default(Object.fromEntries(SUBGRAPHS.map((s) => [s, { host: '127.0.0.1', port: 0 }])) as never),
    demo: z.object({ seed: z.boolean().default(false) }).strict().default({ seed: false }),
  })
  .strict();

export type HubConfig = z.output<typeof HubConfigSchema>;

/**
 * Loads `hub.yml` from the config directory (HUB_CONFIG_DIR), or only defaults when there is none.
 * Environment variables fill what the file leaves out, so `DATABASE_URL=... npm start` just works.
 */
export function loadHubConfig(env: NodeJS.ProcessEnv = process.env, dir = env.HUB_CONFIG_DIR): HubConfig {
  const cfg = loadYamlConfig(dir, 'hub.yml', HubConfigSchema, env);
  cfg.database.url ??= env.DATABASE_URL || undefined;
  cfg.mqtt.url ??= env.MQTT_URL || undefined;
  cfg.auth.jwt.secret ??= env.HUB_JWT_SECRET || undefined;
  cfg.auth.jwt.jwksUrl ??= env.HUB_JWKS_URL || undefined;
  cfg.auth.internalSecret ??= env.HUB_INTERNAL_SECRET || undefined;
  return cfg;
}
