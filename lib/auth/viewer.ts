import { forbidden } from '../errors.ts';

/** Roles in increasing power: each includes what the ones before it may do. */
export const ROLES = ['viewer', 'operator', 'engineer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, as the gateway verified it. `sites`/`lines` absent means the whole plant. */
export interface Viewer {
  sub: string;
  role: Role;
  sites?: string[];
  lines?: string[];
  /** When the user's token expires (epoch seconds): set by the gateway's verifier, never signed onward. */
  expiresAt?: number;
}

/**
 * What a viewer may see, as one string: role and site/line claims, not the user. Subscriptions that share it
 * share one upstream stream, and cached entities and loaders are shared per scope.
 */
export function scopeKey(v: Viewer): string {
  return JSON.stringify([v.role, v.sites ? [...v.sites].sort() : null, v.lines ? [...v.lines].sort() : null]);
}

export function roleRank(role: Role): number {
  return ROLES.indexOf(role);
}

export function requireRole(viewer: Viewer, min: Role): void {
  if (roleRank(viewer.role) < roleRank(min)) {
    throw forbidden(`This operation needs the ${min} role; the token has ${viewer.role}`);
  }
}

/** The strongest known role among the token's `roles` (array) or `role` (string) claims. */
export function roleFromClaims(claims: Record<string, unknown>): Role | undefined {
  const raw = Array.isArray(claims.roles) ? claims.roles : claims.role !== undefined ? [claims.role] : [];
  let best: Role | undefined;
  for (const r of raw) {
    if (typeof r === 'string' && (ROLES as readonly string[]).includes(r.toLowerCase())) {
      const role = r.toLowerCase() as Role;
      if (!best || roleRank(role) > roleRank(best)) best = role;
    }
  }
  return best;
}

export function isScoped(viewer: Viewer): boolean {
  return viewer.sites !== undefined || viewer.lines !== undefined;
}
