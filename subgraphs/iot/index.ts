import { subgraphTypeDefs } from '../../lib/schema.ts';
import type { SubgraphModule } from '../../lib/subgraph/module.ts';
import { createLoaders, type Loaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';

export const iot: SubgraphModule<Loaders> = {
  name: 'iot',
  typeDefs: subgraphTypeDefs('iot'),
  resolvers,
  loaders: createLoaders,
};
