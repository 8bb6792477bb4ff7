import { describe, expect, it } from 'vitest';
import { GraphQLError } from 'graphql';
import { ErrorCodes, formatError, HubError } from '../../lib/errors.ts';

describe('error table', () => {
  it('passes every code of the table through with its message, without stack traces', () => {
    for (const code of Object.keys(ErrorCodes).filter((c) => c !== 'INTERNAL_SERVER_ERROR')) {
      const e = new HubError(code as never, `m-${code}`);
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
