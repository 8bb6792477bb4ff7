import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createInternalTokenCache } from '../lib/auth/tokens.ts';
import type { Viewer } from '../lib/auth/viewer.ts';
import { HubError } from '../lib/errors.ts';

export interface GatewayContext {
  viewer: Viewer;
  requestId: string;
  internalToken: string;
}

/**
 * Authenticates every operation at the gateway. The internal token for subgraphs is cached per user token
 * (refreshed a minute before it expires), so a busy dashboard does not pay a signature per request.
 */
export function createContextFactory(verifyUser: (token: string) => Promise<Viewer>, internalSecret: string) {
  const internalToken = createInternalTokenCache(internalSecret);
  return async function context(req: IncomingMessage): Promise<GatewayContext> {
    const requestId = (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) || randomUUID();
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m) {
      throw new HubError('UNAUTHENTICATED', 'Send a bearer token: Authorization: Bearer <jwt>', {
        http: { status: 401 },
      });
    }
    let viewer: Viewer;
    try {
      viewer = await verifyUser(m[1]!);
    } catch (e) {
      throw new HubError('UNAUTHENTICATED', (e as Error).message, { http: { status: 401 } });
    }
    return { viewer, requestId, internalToken: await internalToken(m[1]!, viewer) };
  };
}
