import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthConfig } from '../../lib/config/connection.ts';
import { UpstreamError } from '../../lib/connectors/errors.ts';
import { UpstreamClient } from '../../lib/connectors/http.ts';

const SECRET = 'Sup3r-S3cret-Value';
let hanging: Server;
let url: string;
let closedUrl: string;

beforeAll(async () => {
  // Accepts and never answers: the client's deadline produces an axios error (with its request config).
  hanging = createServer(() => {});
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((r) => probe.close(() => r()));
});
afterAll(async () => {
  hanging.closeAllConnections();
  await new Promise<void>((r) => hanging.close(() => r()));
});

const failure = async (base: string, auth: AuthConfig): Promise<UpstreamError> => {
  const client = new UpstreamClient('TEST', {
    baseUrl: base,
    auth,
    timeoutSeconds: 0.2,
    retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    headers: {},
  });
  try {
    // A query in the path as well as in params: neither may survive into the kept URL.
    await client.request({ url: '/orders?site=A', params: { q: 'x' } });
  } catch (e) {
    expect(e).toBeInstanceOf(UpstreamError);
    return e as UpstreamError;
  }
  throw new Error('expected a failure');
};
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('upstream errors keep no credentials', () => {
  it.each([
    ['basic auth, timeout', () => url, { type: 'basic', username: 'hub', password: SECRET } as AuthConfig],
    [
      'API key header, refused connection',
      () => closedUrl,
      { type: 'apiKey', header: 'X-API-Key', key: SECRET } as AuthConfig,
    ],
    [
      'API key query parameter, timeout',
      () => url,
      { type: 'apiKey', header: 'X-API-Key', queryParam: 'apikey', key: SECRET } as AuthConfig,
    ],
    [
      'OAuth2 token request, timeout',
      () => url,
      { type: 'oauth2', tokenUrl: '', clientId: 'hub', clientSecret: SECRET } as AuthConfig,
    ],
  ])('%s: neither JSON nor util.inspect shows a header or the secret', async (_what, base, auth) => {
    const a = auth.type === 'oauth2' ? { ...auth, tokenUrl: `${base()}/oauth/token` } : auth;
    const err = await failure(base(), a);
    const cause = err.originalError as Error & { code?: string; url?: string };
    // What is kept is enough to tell what happened.
    expect(cause).toBeDefined();
    expect(cause.message.length).toBeGreaterThan(0);
    expect(cause.code).toMatch(/ECONNABORTED|ECONNREFUSED|ERR_CANCELED|ETIMEDOUT/);
    for (const text of [
      JSON.stringify(err),
      JSON.stringify(cause),
      inspect(err, { depth: 20, showHidden: true }),
      inspect(cause, { depth: 20, showHidden: true }),
    ]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(b64(`hub:${SECRET}`));
      expect(text).not.toContain(encodeURIComponent(SECRET));
      expect(text.toLowerCase()).not.toContain('authorization');
      expect(text.toLowerCase()).not.toContain('x-api-key');
    }
    // Every case fails on a request the test made itself, so the URL is known: scheme, host and path, nothing else.
    expect(cause.url).toBe(auth.type === 'oauth2' ? `${base()}/oauth/token` : `${base()}/orders`);
  });
});
