import type { SubgraphContext } from '../../lib/subgraph/context.ts';
import type { ProductionServices } from './integration/index.ts';
import type { Loaders } from './loaders.ts';

/** What production's resolvers receive: per-request loaders and the process's MES/ERP service. */
export type Context = SubgraphContext<Loaders, ProductionServices>;
