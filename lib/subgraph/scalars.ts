import { DateTimeResolver, JSONResolver, LocalDateResolver } from 'graphql-scalars';
import { GraphQLUpload } from 'graphql-upload-ts';

/**
 * The custom scalars every subgraph declares, resolved the same way everywhere. Dates stay YYYY-MM-DD strings (no time
 * zone shift).
 */
export const scalarResolvers = {
  DateTime: DateTimeResolver,
  Date: LocalDateResolver,
  JSON: JSONResolver,
  // A file of a multipart request: its value is a promise of the FileUpload (graphql-upload-ts).
  Upload: GraphQLUpload,
};
