import type { SubgraphContext } from '../../lib/subgraph/context.ts';
import type { Loaders } from './loaders.ts';

/** What the iot subgraph's resolvers receive (it has no long-lived services). */
export type Context = SubgraphContext<Loaders, Record<string, never>>;
