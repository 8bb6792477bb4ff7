import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import { Registry, collectDefaultMetrics, Counter, Histogram } from 'prom-client';

/** One registry per process role so a combined `npm start` process still exposes per-service metrics. */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const operations = new Counter({
    name: 'hub_graphql_operations_total',
    help: 'GraphQL operations by type and outcome',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hub_graphql_duration_seconds',
    help: 'GraphQL operation duration',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return { registry, operations, duration };
}
export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Counts and times every operation; `onErrors` sees the errors before they are formatted (the gateway
 * classifies upstream failures there, the subgraphs log unexpected errors with the request id).
 */
export function observePlugin<C extends BaseContext>(
  metrics: Metrics,
  onErrors: (errors: readonly GraphQLError[], context: C) => void,
): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async didEncounterErrors({ errors, contextValue }) {
          onErrors(errors, contextValue);
        },
        async willSendResponse({ operation, errors }) {
          const op = operation?.operation ?? 'unknown';
          metrics.operations.inc({ operation: op, outcome: errors?.length ? 'error' : 'ok' });
          metrics.duration.observe({ operation: op }, Number(process.hrtime.bigint() - started) / 1e9);
        },
      };
    },
  };
}
