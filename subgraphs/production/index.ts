import { subgraphTypeDefs } from '../../lib/schema.ts';
import { createLoaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';

export const production = {
  name: 'production' as const,
  typeDefs: subgraphTypeDefs('production'),
  resolvers,
  loaders: createLoaders,
};
