import { HubError } from '../errors.ts';
import { requireInScope } from './scope-checks.ts';
import type { SubgraphContext } from './context.ts';
import type { LiveEvent, LiveInterest, LiveKind } from './live-feed.ts';

export interface StreamFilter {
  machineIds?: readonly string[] | null;
  lineIds?: readonly string[] | null;
}

/** A filter list as a set; an absent or empty list means "no restriction". */
export const setOf = (xs: readonly string[] | null | undefined) => (xs?.length ? new Set(xs) : undefined);

/**
 * The events of `kind` matching `interest`, from this subgraph's live feed (a clear error when the hub runs
 * without a broker). The events are not the `{ [field]: T }` payloads the generated resolver types model for a
 * lone `subscribe`: graphql-js passes each event to the field's `resolve`, so the resolvers pair the two (the
 * generated SubscriptionResolverObject form) and `resolve` turns an event into the field's value.
 */
export function liveStream<K extends LiveKind>(
  ctx: SubgraphContext,
  kind: K,
  interest: LiveInterest<K>,
): AsyncIterable<LiveEvent<K>> {
  if (!ctx.live)
    throw new HubError(
      'UPSTREAM_UNAVAILABLE',
      'Live subscriptions need the MQTT broker (hub.yml mqtt.url or MQTT_URL)',
    );
  return ctx.live.subscribe(kind, interest);
}

/**
 * The subscribe-time checks and the per-event test shared by every live subscription: a machine or line
 * named in the filter must be inside the token's scope (else FORBIDDEN, now, not a silent empty stream);
 * every event is then tested against the filter AND the token's lines, so a line-scoped token never gets
 * another line's events, whatever its filter says.
 */
export async function scopedInterest<K extends LiveKind>(
  ctx: SubgraphContext,
  filter: StreamFilter | null | undefined,
  extra: (e: LiveEvent<K>) => boolean = () => true,
): Promise<LiveInterest<K>> {
  for (const machineId of filter?.machineIds ?? []) await requireInScope(ctx, { machineId });
  for (const lineId of filter?.lineIds ?? []) await requireInScope(ctx, { lineId });
  const allowedLines = ctx.scope.unrestricted ? undefined : new Set((await ctx.scope.filter()).lineIds ?? []);
  const machines = setOf(filter?.machineIds);
  const lines = setOf(filter?.lineIds);
  return {
    machineIds: machines,
    match: (e) =>
      (!allowedLines || allowedLines.has(e.lineId)) &&
      (!machines || machines.has(e.machineId)) &&
      (!lines || lines.has(e.lineId)) &&
      extra(e),
  };
}
