import { subgraphTypeDefs } from '../../lib/schema.ts';
import { createLoaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';

export const historian = {
  name: 'historian' as const,
  typeDefs: subgraphTypeDefs('historian'),
  resolvers,
  loaders: createLoaders,
};
