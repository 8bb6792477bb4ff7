import type { SubgraphContext } from '../../lib/subgraph/context.ts';
import type { Loaders } from './loaders.ts';
import type { HistorianServices } from './services.ts';

/** What the historian subgraph's resolvers receive: per-request loaders, and the historians' connectors. */
export type Context = SubgraphContext<Loaders, HistorianServices>;
