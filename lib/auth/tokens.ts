import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { unauthenticated } from '../errors.ts';
import { roleFromClaims, type Viewer } from './viewer.ts';

const enc = new TextEncoder();

function stringList(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw unauthenticated('Token claims sites/lines must be string arrays');
  return v as string[];
}

export interface UserTokenOptions {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

/**
 * Verifies the end user's bearer token at the gateway (HS256 shared secret or a JWKS URL) and turns it into a Viewer.
 * Verified tokens are remembered until they expire, so a dashboard polling every second costs one HMAC, not one per
 * call.
 */
export function createUserTokenVerifier(opts: UserTokenOptions) {
  if (!opts.secret && !opts.jwksUrl) throw new Error('auth.jwt needs a secret or a jwksUrl');
  const key: Uint8Array | JWTVerifyGetKey = opts.jwksUrl
    ? createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 })
    : enc.encode(opts.secret!);
  const cache = new Map<string, { viewer: Viewer; exp: number }>();

  return async function verify(token: string): Promise<Viewer> {
    const now = Date.now() / 1000;
    const hit = cache.get(token);
    if (hit && hit.exp > now) return hit.viewer;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as Uint8Array, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: opts.jwksUrl ? undefined : ['HS256'],
      }));
    } catch (e) {
      throw unauthenticated(`Invalid token: ${(e as Error).message}`);
    }
    const role = roleFromClaims(payload);
    if (!payload.sub) throw unauthenticated('Token has no sub claim');
    if (!role) throw unauthenticated('Token carries no known role (viewer, operator, engineer, admin)');
    const viewer: Viewer = {
      sub: payload.sub,
      role,
      sites: stringList(payload.sites),
      lines: stringList(payload.lines),
      expiresAt: payload.exp,
    };
    if (cache.size > 10_000) cache.clear();
    cache.set(token, { viewer, exp: payload.exp ?? now + 60 });
    return viewer;
  };
}

/** Issues a user token (dev tokens, tests, benchmarks). Production tokens come from the plant's identity provider. */
export async function signUserToken(
  secret: string,
  viewer: { sub: string; role: string; sites?: string[]; lines?: string[] },
  ttl = '12h',
): Promise<string> {
  const { sub, role, ...scope } = viewer;
  return new SignJWT({ roles: [role], ...scope })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(enc.encode(secret));
}

const INTERNAL_AUDIENCE = 'oee-hub-subgraph';

/** The gateway's proof to a subgraph that a call came through it, carrying the verified viewer. */
export function signInternalToken(secret: string, viewer: Viewer, ttlSeconds = 120): Promise<string> {
  const { sub, role, sites, lines } = viewer;
  return new SignJWT({ v: { sub, role, sites, lines } })
    .setProtectedHeader({ alg: 'HS256' })
    .setAudience(INTERNAL_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(enc.encode(secret));
}

/**
 * The gateway's internal tokens, cached under a key (a user's token, or a subscription group's scope) and signed
 * again a minute before they expire, so a busy dashboard or a long-lived group does not pay a signature per call.
 */
export function createInternalTokenCache(secret: string) {
  const cache = new Map<string, { token: Promise<string>; renewAt: number }>();
  return function internalToken(key: string, viewer: Viewer): Promise<string> {
    const now = Date.now();
    let e = cache.get(key);
    if (!e || e.renewAt < now) {
      e = { token: signInternalToken(secret, viewer), renewAt: now + 60_000 };
      e.token.catch(() => cache.delete(key));
      if (cache.size > 10_000) cache.clear();
      cache.set(key, e);
    }
    return e.token;
  };
}

/** Subgraph side: accepts only tokens the gateway signed with the shared internal secret. */
export function createInternalTokenVerifier(secret: string) {
  const key = enc.encode(secret);
  const cache = new Map<string, { viewer: Viewer; exp: number }>();
  return async function verify(token: string): Promise<Viewer> {
    const now = Date.now() / 1000;
    const hit = cache.get(token);
    if (hit && hit.exp > now) return hit.viewer;
    try {
      const { payload } = await jwtVerify(token, key, { audience: INTERNAL_AUDIENCE, algorithms: ['HS256'] });
      const viewer = payload.v as Viewer;
      if (cache.size > 10_000) cache.clear();
      cache.set(token, { viewer, exp: payload.exp ?? now });
      return viewer;
    } catch {
      throw unauthenticated('Subgraphs accept calls only through the gateway');
    }
  };
}
