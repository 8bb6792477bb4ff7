import { badInput, notFound } from '../../lib/errors.ts';
import type { Context } from './context.ts';
import type * as G from './__generated__/types.ts';

/** One call resolves at most this many tags: a longer list is split by the caller (and by our connectors inside). */
const MAX_TAGS = 1000;

const TYPES = { 'pi-web-api': 'PI_WEB_API', 'aveva-rest': 'AVEVA_REST' } as const;

export const listHistorians = (ctx: Context): G.Historian[] =>
  [...ctx.services.historians.values()].map(({ config }) => ({ name: config.name, type: TYPES[config.type] }));

/** Every tag as asked, in the order asked: resolved, or failed with the historian's reason. */
export async function resolveTags(
  ctx: Context,
  historian: string,
  tags: string[],
): Promise<G.HistorianTagResolution[]> {
  const h = ctx.services.historians.get(historian);
  if (!h) throw notFound('Historian', historian);
  if (tags.length > MAX_TAGS) throw badInput(`at most ${MAX_TAGS} tags a call, not ${tags.length}`, { max: MAX_TAGS });
  const { resolved, failed } = await h.connector.resolveTags([...new Set(tags)]);
  const found = new Map(resolved.map((t) => [t.tag, t]));
  const why = new Map(failed.map((f) => [f.tag, f.reason]));
  return tags.map((tag) => {
    const t = found.get(tag);
    if (t) return { tag, ref: t.ref, type: t.type, units: t.units, error: null };
    return { tag, ref: null, type: null, units: null, error: why.get(tag) ?? 'the historian did not answer for it' };
  });
}
