import { describe, expect, it } from 'vitest';
import { GraphQLError } from 'graphql';
import { ErrorCodes, formatError, HubError } from '../../lib/errors.ts';

/** The codes clients may rely on, typed out from docs/security.md ("Errors"), not read from lib/errors.ts. */
const DOCUMENTED = [
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_BAD_RESPONSE',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'SUBSCRIPTION_SCHEMA_RELOAD',
] as const;

describe('error table', () => {
  it('holds exactly the documented codes, plus INTERNAL_SERVER_ERROR for everything else', () => {
    expect(Object.keys(ErrorCodes).sort()).toEqual([...DOCUMENTED, 'INTERNAL_SERVER_ERROR'].sort());
  });

  it('passes every documented code through with its message, without stack traces', () => {
    for (const code of DOCUMENTED) {
      const e = new HubError(code, `m-${code}`);
      const out = formatError({ message: e.message, extensions: { ...e.extensions, stacktrace: ['at x'] } });
      expect(out).toEqual({ message: `m-${code}`, extensions: { code } });
    }
  });

  it('masks anything else', () => {
    const raw = new GraphQLError('relation "secret_table" does not exist');
    const out = formatError({ message: raw.message, extensions: { code: 'SOMETHING', requestId: 'r1' } });
    expect(out).toEqual({
      message: 'Unexpected error',
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'r1' },
    });
  });
});
