import { subgraphTypeDefs } from '../../lib/schema.ts';
import { createLoaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';

export const quality = {
  name: 'quality' as const,
  typeDefs: subgraphTypeDefs('quality'),
  resolvers,
  loaders: createLoaders,
};
