import { Scope } from '../auth/scope.ts';
import type { Viewer } from '../auth/viewer.ts';
import type { Db } from '../db/index.ts';
import type { LiveFeed } from './live-feed.ts';

/** What every subgraph resolver receives. `loaders` are per request, so batching never leaks across users. */
export interface SubgraphContext<L = unknown, S = unknown> {
  db: Db;
  viewer: Viewer;
  scope: Scope;
  requestId: string;
  service: string;
  loaders: L;
  /** The subgraph's long-lived services (SubgraphModule.services): connectors, job queue. */
  services: S;
  /** The live channel, for subscriptions; absent when the hub runs without a broker. */
  live?: LiveFeed;
}

/** What a subgraph process holds for all its requests. */
export interface ContextDeps<L, S> {
  db: Db;
  service: string;
  loaders: (db: Db, scope: Scope) => L;
  services: S;
  live?: LiveFeed;
}

/** The scope of a viewer and the loaders bound to it. */
export interface Scoped<L> {
  readonly scope: Scope;
  readonly loaders: L;
}

export function scopedFor<L, S>(d: ContextDeps<L, S>, viewer: Viewer): Scoped<L> {
  const scope = new Scope(d.db, viewer);
  return { scope, loaders: d.loaders(d.db, scope) };
}

/**
 * The one way a resolver's context is made, for HTTP requests and WebSocket subscriptions alike. `scoped` is read
 * on every access, so a subscription can hand in loaders that are renewed while it runs.
 */
export function buildContext<L, S>(
  d: ContextDeps<L, S>,
  viewer: Viewer,
  requestId: string,
  scoped: Scoped<L> = scopedFor(d, viewer),
): SubgraphContext<L, S> {
  return {
    db: d.db,
    viewer,
    requestId,
    service: d.service,
    services: d.services,
    live: d.live,
    get scope() {
      return scoped.scope;
    },
    get loaders() {
      return scoped.loaders;
    },
  };
}
