import type { Registry } from 'prom-client';
import type { DocumentNode } from 'graphql';
import type { Scope } from '../auth/scope.ts';
import type { SubgraphName } from '../config/hub.ts';
import type { Settings } from '../config/settings.ts';
import type { Db } from '../db/index.ts';
import type { JobRunner } from '../jobs/runner.ts';

/** What a subgraph's long-lived services are made from, once per process. */
export interface ServiceDeps {
  db: Db;
  settings: Settings;
  /** The process's job runner; absent where this process runs no jobs (hub.yml jobs.enabled: false). */
  jobs?: JobRunner;
  /** The clock of work that reads up to "now" (the historian frontfill); tests move it. Default Date.now. */
  now?: () => number;
  /** The subgraph's /metrics registry: a service's own metrics (a pipeline's) are served with the subgraph's. */
  registry?: Registry;
}

/**
 * A subgraph's long-lived services (connectors, job workers): `value` reaches every resolver as `ctx.services`;
 * `start` runs before the subgraph takes requests, `stop` after it has stopped taking them.
 */
export interface Services<S> {
  value: S;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

/**
 * What every subgraph folder exports from its index.ts: the assembly needs nothing else to run it, in one
 * process with the others or alone.
 */
export interface SubgraphModule<L = unknown, S = unknown> {
  name: SubgraphName;
  typeDefs: DocumentNode;
  /** The generated `Resolvers` of the subgraph (checked against its schema by codegen). */
  resolvers: object;
  /** Per-request DataLoaders (per scope and second on the subscription path), so batching never leaks across users. */
  loaders(db: Db, scope: Scope): L;
  /** Made once per process at start; a subgraph without services gets `{}` as ctx.services. */
  services?(deps: ServiceDeps): Services<S>;
}
