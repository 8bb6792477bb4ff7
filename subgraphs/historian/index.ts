import { subgraphTypeDefs } from '../../lib/schema.ts';
import type { SubgraphModule } from '../../lib/subgraph/module.ts';
import { createLoaders, type Loaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';
import { historianServices, type HistorianServices } from './services.ts';

export const historian: SubgraphModule<Loaders, HistorianServices> = {
  name: 'historian',
  typeDefs: subgraphTypeDefs('historian'),
  resolvers,
  loaders: createLoaders,
  services: historianServices,
};
