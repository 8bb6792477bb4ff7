import type { SubgraphContext } from '../../lib/subgraph/context.ts';
import type { Loaders } from './loaders.ts';
export type Context = SubgraphContext<Loaders>;
