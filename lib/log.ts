import { pino, type Logger } from 'pino';

/** Structured JSON logs. Token-bearing headers are redacted wherever they appear. */
export const log: Logger = pino({
  level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
  base: { service: process.env.HUB_ROLE ?? 'hub' },
  redact: {
    paths: ['*.authorization', '*.headers.authorization', '*["x-hub-internal"]', '*.password', '*.secret', '*.token'],
    censor: '[redacted]',
  },
});

export type { Logger };
