import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInternalToken, signUserToken } from '../../lib/auth/tokens.ts';
import { configureLog } from '../../lib/log.ts';
import { INTERNAL_HEADER } from '../../lib/subgraph/server.ts';
import { INTERNAL_SECRET, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * docs/security.md: "Tokens and the internal header are redacted from logs." The whole hub runs here with its log
 * written to this file at every level, and is sent requests that carry a user's token through the gateway (and so
 * the gateway's signed header to a subgraph), including ones that fail unexpectedly, which is when the hub logs
 * most about a request.
 */
const logged: string[] = [];
let hub: TestHub;
let admin: string;

/** Any JSON Web Token: the user tokens and the internal header are all JWTs (three base64url parts). */
const JWT = /eyJ[\w-]*\.eyJ[\w-]*\.[\w-]+/;

beforeAll(async () => {
  configureLog({ level: 'trace', destination: { write: (line: string) => void logged.push(line) } });
  hub = await startTestHub();
  admin = await hub.token({ role: 'admin', sub: 'log-test-admin' });
});

afterAll(async () => {
  configureLog({ level: 'silent' });
  await hub?.close();
});

const post = (url: string, headers: Record<string, string>, query: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

const linesFor = (requestId: string) =>
  logged.map((l) => JSON.parse(l) as { msg: string; requestId?: string }).filter((l) => l.requestId === requestId);

describe('tokens in the logs', () => {
  it('a failing request is logged by the gateway and the subgraph, and no token is in any line', async () => {
    const ok = await post(hub.url, { authorization: `Bearer ${admin}` }, '{ sites { nodes { id } } }');
    expect(ok.body.errors).toBeUndefined();
    const made = await post(
      hub.url,
      { authorization: `Bearer ${admin}` },
      'mutation { createSite(input: { id: "LOG-S", name: "Logged" }) { id } }',
    );
    expect(made.body.errors).toBeUndefined();
    const forged = await signUserToken('another-secret-0123456789abcdef0123456789', { sub: 'x', role: 'admin' });
    expect((await post(hub.url, { authorization: `Bearer ${forged}` }, '{ sites { nodes { id } } }')).status).toBe(401);

    // From here on every read of sites fails inside the production subgraph: an unexpected error, logged.
    await sql`drop table production.sites cascade`.execute(hub.db);
    const viaGateway = await post(
      hub.url,
      { authorization: `Bearer ${admin}`, 'x-request-id': 'log-test-gateway' },
      '{ sites { nodes { id } } }',
    );
    expect(viaGateway.body.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');
    // The subgraph called with an internal header whose value the test knows.
    const internal = await signInternalToken(INTERNAL_SECRET, { sub: 'log-test-admin', role: 'admin' });
    const direct = await post(
      hub.subgraphUrls.production,
      { [INTERNAL_HEADER]: internal, 'x-request-id': 'log-test-direct' },
      '{ sites { nodes { id } } }',
    );
    expect(direct.body.errors[0].extensions.code).toBe('INTERNAL_SERVER_ERROR');

    // The failures were logged, under their request ids: the lines below were really written for these requests.
    expect(linesFor('log-test-gateway').map((l) => l.msg)).toEqual(
      expect.arrayContaining(['unexpected error', 'gateway error']),
    );
    expect(linesFor('log-test-direct').map((l) => l.msg)).toContain('unexpected error');
    const text = logged.join('');
    for (const token of [admin, forged, internal]) expect(text).not.toContain(token);
    expect(text).not.toMatch(JWT);
  });
});
