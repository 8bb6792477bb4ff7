import { type DestinationStream, pino, type Logger } from 'pino';

/**
 * Structured JSON logs. Token-bearing headers are redacted in a headers object and in a request's `headers`. The
 * level and the service name are set once by the assembly from its settings (configureLog); until then: info, "hub".
 */
// The service every line names, as a mixin and not a base binding: setBindings adds a binding and never replaces
// one, so a renamed base would have put `service` twice on every line.
let service = 'hub';

export const log: Logger = pino({
  level: 'info',
  base: undefined,
  mixin: () => ({ service }),
  redact: {
    // A path names one depth: a headers object alone (`*.x`) and inside a request (`*.headers.x`) are two paths.
    paths: [
      '*.authorization',
      '*.headers.authorization',
      '*["x-hub-internal"]',
      '*.headers["x-hub-internal"]',
      '*.password',
      '*.secret',
      '*.token',
    ],
    censor: '[redacted]',
  },
});

/**
 * Sets the level (pino's names, or 'silent') and the service every line names. Call it before other modules make
 * child loggers: a child keeps the level it was made with. `destination` replaces stdout (tests read what the hub
 * logs); child loggers write where the root writes.
 */
export function configureLog(o: { level?: string; service?: string; destination?: DestinationStream }): void {
  if (o.level) log.level = o.level;
  if (o.service) service = o.service;
  if (o.destination) (log as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym] = o.destination;
}

export type { Logger };
