import { z } from 'zod';
import { JsonMappingSchema } from './json-mapping.ts';

/** Defaults, exported so docs and tests name the same numbers. */
export const HTTP_DEFAULTS = { intervalSeconds: 60, timeoutSeconds: 10, backoffMaxSeconds: 300 } as const;

// Coerced like hub.yml's numbers, so `intervalSeconds: ${SENSOR_POLL_S:-60}` works after interpolation.
const seconds = z.coerce.number().positive('must be more than 0').finite();

/** Credentials in a URL (user:pass@ or a token in the query) are never stored, shown or logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) u.username = u.password = '***';
    for (const k of [...u.searchParams.keys()]) if (/token|key|secret|pass|auth/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

const EndpointSchema = z
  .object({
    name: z.string().min(1).optional(),
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    intervalSeconds: seconds.default(HTTP_DEFAULTS.intervalSeconds),
    timeoutSeconds: seconds.optional(),
    /** Sent with every request; `${ENV}` references are already resolved by the config loader. */
    headers: z.record(z.string().min(1), z.string()).optional(),
    mapping: JsonMappingSchema,
    backoff: z.object({ maxSeconds: seconds.optional() }).strict().optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    // A poll must be over before the next one is due; otherwise every other poll of a slow endpoint is skipped.
    if (e.timeoutSeconds !== undefined && e.timeoutSeconds > e.intervalSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeoutSeconds'],
        message: `must not exceed intervalSeconds (${e.intervalSeconds})`,
      });
    }
    // Backing off means polling less often than normal, never more.
    if (e.backoff?.maxSeconds !== undefined && e.backoff.maxSeconds < e.intervalSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['backoff', 'maxSeconds'],
        message: `must be at least intervalSeconds (${e.intervalSeconds})`,
      });
    }
    // An HTTP response has no topic: a topicSegment sensor id would dead-letter every document.
    if (e.mapping.sensorId && 'topicSegment' in e.mapping.sensorId) {
      ctx.addIssue({
        code: 'custom',
        path: ['mapping', 'sensorId'],
        message: 'topicSegment is for MQTT; use path or value for HTTP',
      });
    }
  })
  .transform((e) => ({
    // The URL names an endpoint without a name of its own: masked, since the name is shown and logged as it is.
    name: e.name ?? redactUrl(e.url),
    url: e.url,
    intervalSeconds: e.intervalSeconds,
    // The documented default is 10 s, shortened for faster intervals so the default never breaks the rule above.
    timeoutSeconds: e.timeoutSeconds ?? Math.min(HTTP_DEFAULTS.timeoutSeconds, e.intervalSeconds),
    headers: e.headers ?? {},
    mapping: e.mapping,
    // Likewise 300 s, raised to the interval for endpoints polled less often than that.
    backoff: { maxSeconds: e.backoff?.maxSeconds ?? Math.max(HTTP_DEFAULTS.backoffMaxSeconds, e.intervalSeconds) },
  }));

/**
 * The `http` section of iot.yml: sensors and gateways the hub polls for a JSON document.
 *
 *   http:
 *     enabled: true
 *     endpoints:
 *       - name: oven-1
 *         url: http://10.0.4.21/api/status
 *         intervalSeconds: 30        # default 60
 *         timeoutSeconds: 5          # default min(10, intervalSeconds); at most intervalSeconds
 *         headers: { Authorization: "Bearer ${OVEN_TOKEN}" }
 *         mapping: { sensorId: { value: OVEN_1 }, values: [{ path: temp }], timestamp: { path: ts } }
 *         backoff: { maxSeconds: 600 } # default max(300, intervalSeconds); at least intervalSeconds
 */
export const HttpPollingConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    endpoints: z.array(EndpointSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Names key the status and the logs; two endpoints with one name could not be told apart.
    const seen = new Set<string>();
    c.endpoints.forEach((e, i) => {
      if (seen.has(e.name))
        ctx.addIssue({
          code: 'custom',
          path: ['endpoints', i, 'name'],
          message:
            `endpoint name "${e.name}" is used twice (the default name is the url, its credentials masked: ` +
            'give each endpoint a name)',
        });
      seen.add(e.name);
    });
  });

export type HttpPollingConfig = z.output<typeof HttpPollingConfigSchema>;
export type HttpEndpointConfig = HttpPollingConfig['endpoints'][number];
