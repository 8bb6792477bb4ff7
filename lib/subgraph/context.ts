import type { Db } from '../db/index.ts';
import type { Scope } from '../auth/scope.ts';
import type { Viewer } from '../auth/viewer.ts';
import type { LiveFeed } from '../subscriptions/live-feed.ts';

/** What every subgraph resolver receives. `loaders` are per request, so batching never leaks across users. */
export interface SubgraphContext<L = unknown> {
  db: Db;
  viewer: Viewer;
  scope: Scope;
  requestId: string;
  service: string;
  loaders: L;
  /** The live channel, for subscriptions; absent when the hub runs without a broker. */
  live?: LiveFeed;
}
