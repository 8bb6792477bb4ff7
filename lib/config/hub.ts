import { z } from 'zod';
import { loadYamlConfig } from './load.ts';
import { LIVE_PREFIX } from './iot.ts';

export const SUBGRAPHS = ['production', 'historian', 'iot', 'quality'] as const;
export type SubgraphName = (typeof SUBGRAPHS)[number];

const port = z.coerce.number().int().min(0).max(65535);
const secret = z.string().min(32, 'must be at least 32 characters');
/** `${VAR:-}` of an unset variable is an empty string: for an optional setting that means "not set". */
const unsetIfEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

const SUBSCRIPTION_DEFAULTS = {
  entityBatchWindowMs: 5,
  entityCacheMs: 1000,
  upstreamGiveUpMs: 30_000,
  highWaterBytes: 256 * 1024,
  pingIntervalMs: 12_000,
};
const subscriptionsSchema = z
  .object({
    /** How long `_entities` calls of events wait to be batched together (ms). */
    entityBatchWindowMs: z.coerce.number().int().min(0).max(1000).default(SUBSCRIPTION_DEFAULTS.entityBatchWindowMs),
    /** How long other subgraphs' fields fetched for events are reused (ms); 0 fetches them for every event. */
    entityCacheMs: z.coerce.number().int().min(0).default(SUBSCRIPTION_DEFAULTS.entityCacheMs),
    /** How long a lost upstream subscription is retried before its clients get UPSTREAM_UNAVAILABLE (ms). */
    upstreamGiveUpMs: z.coerce.number().int().min(0).default(SUBSCRIPTION_DEFAULTS.upstreamGiveUpMs),
    /** Unsent bytes on a client socket above which it gets only the newest event per subscription. */
    highWaterBytes: z.coerce.number().int().min(1024).default(SUBSCRIPTION_DEFAULTS.highWaterBytes),
    /** Each client is pinged once per interval; one that has not answered the previous ping is dropped (ms). */
    pingIntervalMs: z.coerce.number().int().min(100).default(SUBSCRIPTION_DEFAULTS.pingIntervalMs),
  })
  .strict();

export const UPLOAD_DEFAULTS = { maxFileSize: 1024 * 1024 * 1024, maxFiles: 1 };
const uploadsSchema = z
  .object({
    /** Bytes per file (default 1 GiB); a larger file is refused while it streams. */
    maxFileSize: z.coerce.number().int().min(1).default(UPLOAD_DEFAULTS.maxFileSize),
    /** Files per request. */
    maxFiles: z.coerce.number().int().min(1).max(100).default(UPLOAD_DEFAULTS.maxFiles),
  })
  .strict();

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
        liveTopicPrefix: z
          .string()
          .regex(/^[^+#]+$/)
          .default(LIVE_PREFIX),
      })
      .strict()
      .default({ liveTopicPrefix: LIVE_PREFIX }),
    auth: z
      .object({
        jwt: z
          .object({
            secret: unsetIfEmpty(secret),
            jwksUrl: unsetIfEmpty(z.url()),
            issuer: unsetIfEmpty(z.string()),
            audience: unsetIfEmpty(z.string()),
          })
          .strict()
          .default({}),
        /** Signs the gateway's calls to subgraphs; subgraphs refuse anything not signed with it. */
        internalSecret: unsetIfEmpty(secret),
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
        /** graphql-ws subscriptions (docs/subscriptions.md). */
        subscriptions: subscriptionsSchema.default(SUBSCRIPTION_DEFAULTS),
        /** File uploads (GraphQL multipart): checked while the file streams, before it is read. */
        uploads: uploadsSchema.default(UPLOAD_DEFAULTS),
      })
      .strict()
      .default({
        host: '0.0.0.0',
        port: 4000,
        subgraphUrls: {},
        maxQueryDepth: 12,
        subscriptions: SUBSCRIPTION_DEFAULTS,
        uploads: UPLOAD_DEFAULTS,
      }),
    subgraphs: z
      .object(
        Object.fromEntries(SUBGRAPHS.map((s) => [s, subgraphSchema.default({ host: '127.0.0.1', port: 0 })])) as Record<
          SubgraphName,
          z.ZodDefault<typeof subgraphSchema>
        >,
      )
      .strict()
      .default(Object.fromEntries(SUBGRAPHS.map((s) => [s, { host: '127.0.0.1', port: 0 }])) as never),
    // `${HUB_DEMO_SEED:-false}` arrives as text.
    demo: z
      .object({ seed: z.union([z.boolean(), z.stringbool()]).default(false) })
      .strict()
      .default({ seed: false }),
    /** The durable job runner (MES/ERP syncs, the outbox; backfills and imports next) in this process. */
    jobs: z
      .object({
        /** false: this process serves requests but runs no jobs (another instance does). */
        enabled: z.union([z.boolean(), z.stringbool()]).default(true),
        /** How often an idle worker asks Postgres for work (seconds, at least 0.5). */
        pollingIntervalSeconds: z.coerce.number().min(0.5).default(2),
      })
      .strict()
      .default({ enabled: true, pollingIntervalSeconds: 2 }),
  })
  .strict();

export type HubConfig = z.output<typeof HubConfigSchema>;

/**
 * Loads `hub.yml` from the config directory (HUB_CONFIG_DIR), or only defaults when there is none.
 * Environment variables fill what the file leaves out, so `DATABASE_URL=... npm start` just works.
 */
export function loadHubConfig(env: NodeJS.ProcessEnv, dir = env.HUB_CONFIG_DIR): HubConfig {
  const cfg = loadYamlConfig(dir, 'hub.yml', HubConfigSchema, env);
  cfg.database.url ??= env.DATABASE_URL || undefined;
  cfg.mqtt.url ??= env.MQTT_URL || undefined;
  cfg.auth.jwt.secret ??= env.HUB_JWT_SECRET || undefined;
  cfg.auth.jwt.jwksUrl ??= env.HUB_JWKS_URL || undefined;
  cfg.auth.internalSecret ??= env.HUB_INTERNAL_SECRET || undefined;
  return cfg;
}
