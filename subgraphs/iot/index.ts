import { subgraphTypeDefs } from '../../lib/schema.ts';
import { createLoaders } from './loaders.ts';
import { resolvers } from './resolvers.ts';

export const iot = { name: 'iot' as const, typeDefs: subgraphTypeDefs('iot'), resolvers, loaders: createLoaders };
