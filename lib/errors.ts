import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/**
 * The one table of error codes a client can see in `extensions.code`.
 * Every code a resolver, connector or the gateway raises is listed here, with the HTTP-ish meaning
 * a BI developer can rely on. Unknown errors never leak: they become INTERNAL_SERVER_ERROR.
 */
export const ErrorCodes = {
  BAD_USER_INPUT: 'An argument is missing, malformed or out of range',
  GRAPHQL_VALIDATION_FAILED: 'The operation does not match the schema',
  GRAPHQL_PARSE_FAILED: 'The operation is not valid GraphQL',
  UNAUTHENTICATED: 'No valid token was presented',
  FORBIDDEN: 'The token is valid but may not do this (role or site/line scope)',
  NOT_FOUND: 'No such object, or not visible to this token',
  CONFLICT: 'The change collides with existing data (duplicate id, stale version)',
  UPSTREAM_UNAVAILABLE: 'An external system (MES, ERP, historian, broker) did not answer in time',
  UPSTREAM_BAD_RESPONSE: 'An external system answered with something we cannot use',
  SUBSCRIPTION_SCHEMA_RELOAD: 'The supergraph changed under a subscription; subscribe again',
  INTERNAL_SERVER_ERROR: 'Unexpected failure; the message is masked and logged with the request id',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class HubError extends GraphQLError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, {
      extensions: { ...details, code },
      originalError: cause instanceof Error ? cause : undefined,
    });
    this.code = code;
  }
}

export const badInput = (message: string, details?: Record<string, unknown>) =>
  new HubError('BAD_USER_INPUT', message, details);
export const notFound = (what: string, id: string) => new HubError('NOT_FOUND', `${what} ${id} not found`, { id });
export const forbidden = (message: string) => new HubError('FORBIDDEN', message);
export const unauthenticated = (message = 'A valid bearer token is required') =>
  new HubError('UNAUTHENTICATED', message);

/**
 * The code an error shows a client (`extensions.code` of a GraphQLError such as HubError); anything else is
 * INTERNAL_SERVER_ERROR.
 */
export function errorCodeOf(err: unknown): string {
  return err instanceof GraphQLError ? String(err.extensions.code ?? 'INTERNAL_SERVER_ERROR') : 'INTERNAL_SERVER_ERROR';
}

const CLIENT_CODES = new Set<string>(Object.keys(ErrorCodes));

/** True for errors whose code is in our table, i.e. meant for the client as they are. */
export function isClientError(code: unknown): boolean {
  return typeof code === 'string' && CLIENT_CODES.has(code) && code !== 'INTERNAL_SERVER_ERROR';
}

/**
 * Apollo `formatError` for subgraphs and the gateway: errors with a code from our table pass through
 * (stack traces stripped); anything else is masked. The logging plugin has already logged the original
 * with the request id, which the gateway returns to the client so support can find it.
 */
export function formatError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const { stacktrace: _st, exception: _ex, ...extensions } = formatted.extensions ?? {};
  if (isClientError(extensions.code)) return { ...formatted, extensions };
  return {
    message: 'Unexpected error',
    path: formatted.path,
    locations: formatted.locations,
    extensions: { code: 'INTERNAL_SERVER_ERROR', ...(extensions.requestId ? { requestId: extensions.requestId } : {}) },
  };
}

/** Maps a Postgres error to a client error where the cause is the client's data, else rethrows. */
export function fromPgError(err: unknown, what: string): never {
  const e = err as { code?: string; detail?: string; constraint?: string };
  if (e?.code === '23505') throw new HubError('CONFLICT', `${what} already exists`, { constraint: e.constraint });
  if (e?.code === '23503')
    throw badInput(`${what} refers to something that does not exist`, { constraint: e.constraint });
  if (e?.code === '23514' || e?.code === '22P02' || e?.code === '22003' || e?.code === '22007') {
    throw badInput(`${what} has an invalid value`, { constraint: e.constraint });
  }
  throw err;
}
