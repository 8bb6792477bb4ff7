import { executeQueryPlan, type GraphQLDataSource, type ServiceMap } from '@apollo/gateway';
import type { QueryPlan } from '@apollo/query-planner';
import type { GraphQLFormattedError } from 'graphql';
import { formatError } from '../../lib/errors.ts';
import { log } from '../../lib/log.ts';
import type { GatewayContext } from '../context.ts';
import type { SubscriptionPlan, SubscriptionPlanner } from './planner.ts';

export interface CompletedEvent {
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
}

/** The pseudo-service that "fetches" the primary result: it hands over the event the upstream stream delivered. */
const EVENT_SERVICE = '__event';

/**
 * Runs the `rest` of a subscription plan for one event with @apollo/gateway's own executor: the plan is
 * rewritten as `Sequence[primary → __event, rest]`, where `__event` returns the event, so the executor makes
 * the `_entities` calls of the other subgraphs and shapes the response to the client's selection exactly as it
 * does for queries. (The executor refuses Subscription nodes; this is the documented way around it, pinned by
 * the contract test in test/unit/subscription-plan.test.ts.)
 */
export class EventCompleter {
  private readonly plans = new WeakMap<SubscriptionPlan, QueryPlan>();

  constructor(
    private readonly planner: SubscriptionPlanner,
    private readonly services: ServiceMap,
  ) {}

  async complete(
    plan: SubscriptionPlan,
    query: string,
    variables: Record<string, unknown>,
    context: GatewayContext,
    data: Record<string, unknown>,
  ): Promise<CompletedEvent> {
    const event: GraphQLDataSource = { process: async () => ({ data }) };
    const requestContext = {
      request: { query, variables, operationName: plan.operationName },
      document: plan.document,
      operation: plan.operation,
      operationName: plan.operationName ?? null,
      source: query,
      queryHash: '',
      schema: this.planner.apiGraphQLSchema,
      context,
      logger: log,
      metrics: {},
    };
    const result = await executeQueryPlan(
      this.queryPlan(plan),
      { ...this.services, [EVENT_SERVICE]: event },
      requestContext as never,
      plan.operationContext,
      this.planner.supergraphSchema,
      this.planner.apiSchema,
    );
    return {
      data: result.data as CompletedEvent['data'],
      errors: result.errors?.length
        ? result.errors.map((e) =>
            formatError(
              typeof (e as { toJSON?: unknown }).toJSON === 'function'
                ? (e as never as { toJSON(): GraphQLFormattedError }).toJSON()
                : e,
            ),
          )
        : undefined,
    };
  }

  private queryPlan(plan: SubscriptionPlan): QueryPlan {
    let qp = this.plans.get(plan);
    if (!qp) {
      const primary = { ...plan.primary, serviceName: EVENT_SERVICE };
      qp = { kind: 'QueryPlan', node: plan.rest ? { kind: 'Sequence', nodes: [primary, plan.rest] } : primary };
      this.plans.set(plan, qp);
    }
    return qp;
  }
}
