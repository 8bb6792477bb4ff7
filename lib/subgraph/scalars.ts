import { DateTimeResolver, JSONResolver, LocalDateResolver } from 'graphql-scalars';

/**
 * The custom scalars every subgraph declares, resolved the same way everywhere. Dates stay YYYY-MM-DD strings (no time
 * zone shift).
 */
export const scalarResolvers = { DateTime: DateTimeResolver, Date: LocalDateResolver, JSON: JSONResolver };
