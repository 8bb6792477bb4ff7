import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { loadYamlConfig } from './load.ts';
import { HUB_ID } from '../ids.ts';

/**
 * What every external connection shares (mes.yml and erp.yml): where it is, how it authenticates, how long a
 * call may take and how often a transient failure is retried. Secrets must be ${ENV} references in YAML
 * (authSecretKeys: a literal is refused when the file is loaded).
 */
export const AuthSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).strict(),
  z.object({ type: z.literal('basic'), username: z.string().min(1), password: z.string().min(1) }).strict(),
  z
    .object({
      type: z.literal('apiKey'),
      /** Header that carries the key (the usual place); `query` sends it as a query parameter instead. */
      header: z.string().min(1).default('X-API-Key'),
      queryParam: z.string().min(1).optional(),
      key: z.string().min(1),
    })
    .strict(),
  z
    .object({
      type: z.literal('oauth2'),
      /** Client-credentials grant (RFC 6749 §4.4); the token is cached until shortly before it expires. */
      tokenUrl: z.url(),
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      scope: z.string().optional(),
    })
    .strict(),
]);
export type AuthConfig = z.output<typeof AuthSchema>;

export const RetrySchema = z
  .object({
    /** Attempts per call, the first included (1 = no retry). */
    maxAttempts: z.number().int().min(1).max(10).default(4),
    baseDelayMs: z.number().int().min(0).max(60_000).default(300),
    maxDelayMs: z.number().int().min(0).max(300_000).default(10_000),
  })
  .strict();
export type RetryConfig = z.output<typeof RetrySchema>;

/**
 * TLS for an https:// baseUrl whose certificate comes from the plant's own CA (historians and MES servers often have
 * one). The CA file is read when the config is loaded, and trusted beside the system's CAs.
 */
export const TlsSchema = z
  .object({
    /** A PEM file of the CA certificate(s) to trust, as a path from the working directory or absolute. */
    caFile: z.string().min(1).optional(),
    /** false accepts any certificate: for a test rig only (the connection can then be intercepted). */
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict()
  .transform((t, ctx) => {
    if (!t.caFile) return { rejectUnauthorized: t.rejectUnauthorized };
    try {
      return { rejectUnauthorized: t.rejectUnauthorized, ca: readFileSync(t.caFile, 'utf8') };
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['caFile'], message: `cannot be read: ${(e as Error).message}` });
      return z.NEVER;
    }
  });

export const ConnectionSchema = z
  .object({
    baseUrl: z.url(),
    auth: AuthSchema.default({ type: 'none' }),
    timeoutSeconds: z.number().min(0.05).max(600).default(30),
    retry: RetrySchema.default({ maxAttempts: 4, baseDelayMs: 300, maxDelayMs: 10_000 }),
    /** Extra headers sent on every call (e.g. sap-client, REST-Framework-Version). Not for secrets: use auth. */
    headers: z.record(z.string(), z.string()).default({}),
    tls: TlsSchema.optional(),
  })
  .strict();
export type ConnectionConfig = z.output<typeof ConnectionSchema>;

/**
 * A sync interval must make a cron expression that fires evenly: a divisor of 60 minutes, or whole hours that
 * divide a day. pg-boss schedules are cron-based and persisted, so they survive restarts.
 */
export const syncIntervalMinutes = z
  .number()
  .int()
  .min(1)
  .refine(
    (n) => (n < 60 ? 60 % n === 0 : n % 60 === 0 && 1440 % n === 0),
    'must divide 60 (1, 2, 3, 5, 10, 15, 20, 30) or be whole hours dividing 24',
  );

export function cronEvery(minutes: number): string {
  return minutes < 60 ? `*/${minutes} * * * *` : `0 */${minutes / 60} * * *`;
}

/** Line ids as the hub knows them (same rule as the production.lines check). */
export const lineId = z.string().regex(HUB_ID, 'is not a valid line id');

/** The upstream values a lineMap (upstream value → our line id) maps to `lineId`. */
export function valuesMappedTo(lineMap: Record<string, string>, lineId: string): string[] {
  return Object.entries(lineMap)
    .filter(([, l]) => l === lineId)
    .map(([v]) => v);
}

/**
 * The secrets of a connection's auth (mes.yml / erp.yml): each must be a `${VAR}` reference, never a literal, so
 * no secret sits in a file that is copied, committed or shown. `prefix` names the example variable (MES, ERP).
 */
export function authSecretKeys(root: 'mes' | 'erp'): { path: string[]; example: string }[] {
  const P = root.toUpperCase();
  const auth = [root, 'connection', 'auth'];
  return [
    { path: [...auth, 'clientSecret'], example: `${P}_CLIENT_SECRET` },
    { path: [...auth, 'password'], example: `${P}_PASSWORD` },
    { path: [...auth, 'key'], example: `${P}_API_KEY` },
  ];
}

/**
 * Loads `mes.yml` / `erp.yml` from the config directory: no file (or `<root>.enabled: false`) means no such system.
 * A switched-off example needs none of its ${ENV} secrets set.
 */
export function loadSystemConfig<R extends 'mes' | 'erp', T extends { enabled: boolean }>(
  dir: string | undefined,
  root: R,
  schema: z.ZodType<{ [k in R]?: T }>,
  env: NodeJS.ProcessEnv,
): T | undefined {
  const cfg = loadYamlConfig(
    dir,
    `${root}.yml`,
    schema,
    env,
    authSecretKeys(root),
    (raw) => (raw as Partial<Record<R, { enabled?: unknown } | null>> | null | undefined)?.[root]?.enabled === false,
  )?.[root];
  return cfg?.enabled ? cfg : undefined;
}
