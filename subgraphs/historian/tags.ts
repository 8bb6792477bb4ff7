import { HISTORIAN_SYSTEMS as SYSTEMS } from '../../lib/config/historian.ts';
import { badInput, notFound } from '../../lib/errors.ts';
import type { Context } from './context.ts';
import type * as G from './__generated__/types.ts';
import type { NewTagMapping } from './historian.repo.ts';

/** One call resolves at most this many tags: a longer list is split by the caller (and by our connectors inside). */
const MAX_TAGS = 1000;

const TYPES = { 'pi-web-api': 'PI_WEB_API', 'aveva-rest': 'AVEVA_REST' } as const;
/** The historian system each kind of historian is (what mappings made without a named historian carry). */

export const listHistorians = (ctx: Context): G.Historian[] =>
  [...ctx.services.historians.values()].map(({ config }) => ({ name: config.name, type: TYPES[config.type] }));

/** The historian of historian.yml by name; NOT_FOUND when there is none. */
function historianOf(ctx: Context, name: string) {
  const h = ctx.services.historians.get(name);
  if (!h) throw notFound('Historian', name);
  return h;
}

/** Each tag as asked, in the order asked: the historian's tag, or its reason for not having one. */
async function lookUp(h: ReturnType<typeof historianOf>, tags: string[]) {
  const { resolved, failed } = await h.connector.resolveTags([...new Set(tags)]);
  const found = new Map(resolved.map((t) => [t.tag, t]));
  const why = new Map(failed.map((f) => [f.tag, f.reason]));
  return tags.map((tag) => ({
    tag,
    found: found.get(tag),
    reason: why.get(tag) ?? 'the historian did not answer for it',
  }));
}

/** Every tag as asked, in the order asked: resolved, or failed with the historian's reason. */
export async function resolveTags(
  ctx: Context,
  historian: string,
  tags: string[],
): Promise<G.HistorianTagResolution[]> {
  const h = historianOf(ctx, historian);
  if (tags.length > MAX_TAGS) throw badInput(`at most ${MAX_TAGS} tags a call, not ${tags.length}`, { max: MAX_TAGS });
  return (await lookUp(h, tags)).map(({ tag, found: t, reason }) =>
    t
      ? { tag, ref: t.ref, type: t.type, units: t.units, error: null }
      : { tag, ref: null, type: null, units: null, error: reason },
  );
}

/**
 * A new mapping as it will be stored. Naming a historian, the tag is looked up on it first: a tag it does not know is
 * refused with the historian's own reason, and the tag's handle (WebId, FQN) is kept. A historian system alone is
 * taken as it is (no historian to ask).
 */
export async function checkedMapping(ctx: Context, input: G.CreateTagMappingInput): Promise<NewTagMapping> {
  const { historian, historianSystem, ...rest } = input;
  if (!historian) {
    if (!historianSystem) throw badInput('name the historian the tag is on (or at least its historianSystem)');
    return { ...rest, historianSystem, historian: null, ref: null };
  }
  const h = historianOf(ctx, historian);
  const system = SYSTEMS[h.config.type];
  if (historianSystem && historianSystem !== system) {
    throw badInput(`historian ${historian} is a ${system} historian, not ${historianSystem}`);
  }
  const { found, reason } = (await lookUp(h, [input.tag]))[0]!;
  if (!found) {
    throw badInput(`${input.tag} is not a tag of ${historian}: ${reason}`, { historian, tag: input.tag, reason });
  }
  return { ...rest, historianSystem: system, historian, ref: found.ref, tagType: found.type };
}
