/**
 * The gateway bench's bearer tokens. Our gateway caches, per user token, the verified viewer and the internal
 * token it signs for the subgraphs (lib/auth/tokens.ts, used by gateway/context.ts), and the subgraphs cache the
 * internal tokens they verified; Hive verifies every request. With one token for every request ours pays for
 * neither signature after the first, so the bench also runs every target with a different token per request,
 * taken round-robin from a pool too large for those caches to ever hit.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { signInternalToken, signUserToken } from '../../lib/auth/tokens.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET } from './env.ts';

const TOKENS_SOURCE = fileURLToPath(new URL('../../lib/auth/tokens.ts', import.meta.url));

/** A user's bearer token and the internal token our gateway would sign for that user (sent by direct and Hive). */
export interface TokenPair {
  user: string;
  internal: string;
}

/**
 * The largest bound of the token caches, read from their source (`if (cache.size > N) cache.clear()`), so the
 * pool follows a change of the bound instead of silently turning into cache hits.
 */
export function tokenCacheBound(): number {
  const bounds = [...readFileSync(TOKENS_SOURCE, 'utf8').matchAll(/cache\.size > ([\d_]+)/g)].map((m) =>
    Number(m[1]!.replaceAll('_', '')),
  );
  if (!bounds.length)
    throw new Error(`no "cache.size > N" bound in ${TOKENS_SOURCE}: the token caches changed, size the pool anew`);
  return Math.max(...bounds);
}

/**
 * Round-robin over P tokens: between two uses of one token come P − 1 others, each a miss that is inserted. A
 * cache bounded at B is cleared at the latest on the (B + 1)-th insert, so P ≥ B + 2 guarantees a miss; twice the
 * bound leaves room to spare.
 */
export const poolSizeFor = (bound: number) => 2 * bound;

/** One user (sub `bench`) for the one-token case, then `size` distinct users for the distinct-token case. */
export async function tokenPool(size: number): Promise<{ one: TokenPair; pool: TokenPair[] }> {
  const pair = async (sub: string): Promise<TokenPair> => ({
    user: await signUserToken(BENCH_JWT_SECRET, { sub, role: 'viewer' }),
    internal: await signInternalToken(BENCH_INTERNAL_SECRET, { sub, role: 'viewer' }, 3600),
  });
  const pool: TokenPair[] = [];
  // In slices: a few thousand signatures at once are as fast, without 40,000 pending promises.
  for (let i = 0; i < size; i += 1000)
    pool.push(
      ...(await Promise.all(Array.from({ length: Math.min(1000, size - i) }, (_, k) => pair(`bench-${i + k}`)))),
    );
  if (new Set(pool.map((p) => p.user)).size !== size) throw new Error('the token pool holds duplicate tokens');
  return { one: await pair('bench'), pool };
}
