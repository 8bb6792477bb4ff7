import { subgraphTypeDefs } from '../../lib/schema.ts';
import type { SubgraphModule } from '../../lib/subgraph/module.ts';
import { productionServices, type ProductionServices } from './integration/index.ts';
import { createLoaders, type Loaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';

export const production: SubgraphModule<Loaders, ProductionServices> = {
  name: 'production',
  typeDefs: subgraphTypeDefs('production'),
  resolvers,
  loaders: createLoaders,
  services: productionServices,
};
