import { startGateway as startApolloGateway, type GatewayOptions } from '../gateway/server.ts';
import { createUserTokenVerifier } from '../lib/auth/tokens.ts';
import type { SubgraphName } from '../lib/config/hub.ts';
import type { Settings } from '../lib/config/settings.ts';
import { log } from '../lib/log.ts';
import { readSupergraph } from '../lib/schema.ts';
import type { Secrets } from '../lib/secrets.ts';

/** The gateway's options from the settings: the one place they are put together. */
export function gatewayOptions(
  settings: Settings,
  secrets: Secrets,
  subgraphUrls: Record<SubgraphName, string>,
  port = settings.port ?? settings.hub.gateway.port,
): GatewayOptions {
  const { auth, gateway } = settings.hub;
  return {
    supergraphSdl: readSupergraph(),
    subgraphUrls,
    verifyUser: createUserTokenVerifier({
      secret: secrets.jwtSecret,
      jwksUrl: secrets.jwksUrl,
      issuer: auth.jwt.issuer,
      audience: auth.jwt.audience,
    }),
    internalSecret: secrets.internalSecret,
    host: gateway.host,
    port,
    ...gateway.subscriptions,
    uploads: gateway.uploads,
  };
}

export async function startGateway(options: GatewayOptions): ReturnType<typeof startApolloGateway> {
  const gw = await startApolloGateway(options);
  log.info({ url: gw.url }, 'gateway listening');
  return gw;
}
