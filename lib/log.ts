import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs. Token-bearing headers are redacted wherever they appear. The level and the service name
 * are set once by the assembly from its settings (configureLog); until then: info, "hub".
 */
export const log: Logger = pino({
  level: 'info',
  base: { service: 'hub' },
  redact: {
    paths: ['*.authorization', '*.headers.authorization', '*["x-hub-internal"]', '*.password', '*.secret', '*.token'],
    censor: '[redacted]',
  },
});

/**
 * Sets the level (pino's names, or 'silent') and the service every line names. Call it before other modules make
 * child loggers: a child keeps the level it was made with.
 */
export function configureLog(o: { level?: string; service?: string }): void {
  if (o.level) log.level = o.level;
  if (o.service) log.setBindings({ service: o.service });
}

export type { Logger };
