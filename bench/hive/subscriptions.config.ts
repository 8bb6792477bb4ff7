/**
 * Hive Gateway for the subscriptions bench (loaded by `hive-gateway supergraph ... -c` in its own process).
 * Clients authenticate on the graphql-ws connection (JWT in connection params, verified by Hive's JWT plugin,
 * like ours). Hive opens graphql-ws connections to the iot and quality subgraphs (one per distinct
 * connection params, multiplexed) carrying a pre-signed internal token, and sends the same token on its
 * `_entities` fetches; it signs nothing itself. In-flight dedupe stays at Hive's default here: it only
 * concerns concurrent identical HTTP fetches, and entity fetches per event differ by representation.
 */
import {
  createInlineSigningKeyProvider,
  defineConfig,
  extractFromConnectionParams,
  extractFromHeader,
} from '@graphql-hive/gateway';

const secret = process.env.BENCH_JWT_SECRET;
const internal = process.env.BENCH_INTERNAL_TOKEN;
if (!secret || !internal) throw new Error('BENCH_JWT_SECRET and BENCH_INTERNAL_TOKEN must be set');

const ws = { kind: 'ws', location: '/graphql', options: { connectionParams: { internalToken: internal } } };

export const gatewayConfig = defineConfig({
  jwt: {
    signingKeyProviders: [createInlineSigningKeyProvider(secret)],
    tokenLookupLocations: [
      extractFromConnectionParams({ name: 'token' }),
      extractFromHeader({ name: 'authorization', prefix: 'Bearer' }),
    ],
    tokenVerification: { algorithms: ['HS256'] },
    reject: { missingToken: true, invalidToken: true },
    forward: { payload: false, token: false },
  },
  transportEntries: {
    '*': { headers: [['x-hub-internal', internal]] },
    iot: { headers: [['x-hub-internal', internal]], options: { subscriptions: ws } },
    quality: { headers: [['x-hub-internal', internal]], options: { subscriptions: ws } },
  },
  logging: 'warn',
});
