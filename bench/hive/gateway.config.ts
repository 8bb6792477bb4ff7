/**
 * Hive Gateway as the bench's comparison point (loaded by `hive-gateway supergraph ... -c` in its own process).
 * It verifies the user's JWT with its built-in JWT plugin (HS256, same secret as ours, reject missing/invalid),
 * like our gateway does. It does NOT mint the hub's internal token: the bench client sends a pre-signed
 * `x-hub-internal` header and Hive forwards it to every subgraph fetch (our gateway signs it, cached per user token).
 *
 * Hive's HTTP executor shares identical in-flight subgraph requests by default. With every bench client sending
 * the same query and token, that turns most subgraph fetches into waits on someone else's, which neither our
 * gateway nor the direct baseline does; so it is off unless BENCH_HIVE_DEDUP=1 (measured separately, as "defaults").
 */
import { createInlineSigningKeyProvider, defineConfig, extractFromHeader } from '@graphql-hive/gateway';

const secret = process.env.BENCH_JWT_SECRET;
if (!secret) throw new Error('BENCH_JWT_SECRET is not set');

export const gatewayConfig = defineConfig({
  jwt: {
    signingKeyProviders: [createInlineSigningKeyProvider(secret)],
    tokenLookupLocations: [extractFromHeader({ name: 'authorization', prefix: 'Bearer' })],
    tokenVerification: { algorithms: ['HS256'] },
    reject: { missingToken: true, invalidToken: true },
    // Our subgraphs read the viewer from x-hub-internal only; don't add claims to every subgraph request body.
    forward: { payload: false, token: false },
  },
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({ 'x-hub-internal': request.headers.get('x-hub-internal') }),
  },
  transportEntries:
    process.env.BENCH_HIVE_DEDUP === '1' ? {} : { '*': { options: { deduplicateInflightRequests: false } } },
  logging: 'warn',
});
