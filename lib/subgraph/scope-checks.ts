import { forbidden, notFound } from '../errors.ts';
import type { SubgraphContext } from './context.ts';

/**
 * Direct-id access for scoped tokens: a missing row is NOT_FOUND; a row on a line (or machine) outside the
 * token's scope is refused with FORBIDDEN, never returned.
 */
export async function requireVisible<R>(
  ctx: SubgraphContext,
  what: string,
  id: string,
  row: R | null | undefined,
  place: (r: R) => { lineId?: string | null; machineId?: string | null; siteId?: string | null },
): Promise<R> {
  if (!row) throw notFound(what, id);
  if (ctx.scope.unrestricted) return row;
  const p = place(row);
  const ok =
    (p.lineId != null && (await ctx.scope.allowsLine(p.lineId))) ||
    (p.machineId != null && (await ctx.scope.allowsMachine(p.machineId))) ||
    (p.siteId != null && (await ctx.scope.allowsSite(p.siteId)));
  if (!ok) throw forbidden(`${what} ${id} is outside this token's site/line scope`);
  return row;
}

/** For writes: the target line/machine must be inside the token's scope. */
export async function requireInScope(
  ctx: SubgraphContext,
  place: { lineId?: string; machineId?: string; siteId?: string },
) {
  if (ctx.scope.unrestricted) return;
  const ok =
    (place.lineId !== undefined && (await ctx.scope.allowsLine(place.lineId))) ||
    (place.machineId !== undefined && (await ctx.scope.allowsMachine(place.machineId))) ||
    (place.siteId !== undefined && (await ctx.scope.allowsSite(place.siteId)));
  if (!ok)
    throw forbidden(
      `Target ${place.lineId ?? place.machineId ?? place.siteId} is outside this token's site/line scope`,
    );
}
