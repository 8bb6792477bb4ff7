import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createUserTokenVerifier } from '../../lib/auth/tokens.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { startGateway } from '../../gateway/server.ts';
import { startSubgraph } from '../../app/start-subgraph.ts';
import { openDatabase } from '../../lib/db/open.ts';
import { production as productionSubgraph } from '../../subgraphs/production/index.ts';
import { createTestDatabase, INTERNAL_SECRET } from '../helpers/hub.ts';

/** The gateway with an identity provider's JWKS instead of a shared secret (RS256 keys served over HTTP). */
let idp: Server;
let jwksUrl: string;
let privateKey: CryptoKey;
let close: () => Promise<void>;
let gatewayUrl: string;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  idp = createServer((_req, res) =>
    res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })),
  );
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(idp.address() as { port: number }).port}/.well-known/jwks.json`;

  const database = await createTestDatabase();
  const db = await openDatabase(database.url, 3);
  const production = await startSubgraph(productionSubgraph, {
    db,
    internalSecret: INTERNAL_SECRET,
    host: '127.0.0.1',
    port: 0,
  });
  const gw = await startGateway({
    supergraphSdl: readSupergraph(),
    subgraphUrls: {
      production: production.url,
      historian: production.url,
      iot: production.url,
      quality: production.url,
    },
    verifyUser: createUserTokenVerifier({ jwksUrl, issuer: 'https://idp.example', audience: 'oee-hub' }),
    internalSecret: INTERNAL_SECRET,
    host: '127.0.0.1',
    port: 0,
  });
  gatewayUrl = gw.url;
  close = async () => {
    await gw.close();
    await production.close();
    await db.destroy();
    await database.drop();
    idp.close();
  };
});
afterAll(() => close?.());

const sign = (claims: Record<string, unknown>, iss = 'https://idp.example', aud = 'oee-hub') =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setSubject('ivy')
    .setIssuer(iss)
    .setAudience(aud)
    .setExpirationTime('5m')
    .sign(privateKey);

const ask = async (token: string) => {
  const res = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ sites { totalCount } }' }),
  });
  return res.json() as Promise<any>;
};

describe('JWKS authentication', () => {
  it('accepts an RS256 token from the configured issuer and audience', async () => {
    const body = await ask(await sign({ roles: ['viewer'] }));
    expect(body).toEqual({ data: { sites: { totalCount: 0 } } });
  });

  it('refuses a wrong issuer or audience', async () => {
    expect((await ask(await sign({ roles: ['viewer'] }, 'https://evil.example'))).errors[0].extensions.code).toBe(
      'UNAUTHENTICATED',
    );
    expect((await ask(await sign({ roles: ['viewer'] }, undefined, 'other-app'))).errors[0].extensions.code).toBe(
      'UNAUTHENTICATED',
    );
  });
});
