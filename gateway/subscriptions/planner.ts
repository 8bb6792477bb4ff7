import { buildOperationContext } from '@apollo/gateway';
import { operationFromDocument, Supergraph, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type FetchNode, type PlanNode } from '@apollo/query-planner';
import {
  GraphQLError,
  parse,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';

/** A subscription planned once: where its events come from (primary) and what completes each one (rest). */
export interface SubscriptionPlan {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName?: string;
  primary: FetchNode;
  rest?: PlanNode;
  operationContext: ReturnType<typeof buildOperationContext>;
}

export type Prepared =
  | { kind: 'subscription'; plan: SubscriptionPlan }
  | { kind: 'query' | 'mutation' }
  | { kind: 'error'; errors: GraphQLError[] };

const MAX_CACHED = 1000;

/**
 * The supergraph as the subscription engine sees it: the same query planner @apollo/gateway uses, asked for
 * subscription plans (which it makes; only the gateway's executor refuses them). Plans are cached per document
 * text and operation name, so ten thousand dashboards sending one document cost one planning.
 */
export class SubscriptionPlanner {
  readonly supergraphSchema: GraphQLSchema;
  readonly apiSchema: Schema;
  readonly apiGraphQLSchema: GraphQLSchema;
  private readonly planner: QueryPlanner;
  private readonly cache = new Map<string, Prepared>();

  constructor(supergraphSdl: string) {
    const supergraph = Supergraph.build(supergraphSdl);
    this.supergraphSchema = supergraph.schema.toGraphQLJSSchema();
    this.apiSchema = supergraph.apiSchema();
    this.apiGraphQLSchema = this.apiSchema.toGraphQLJSSchema();
    this.planner = new QueryPlanner(supergraph);
  }

  /** Parses, validates against the public schema and plans; errors carry GRAPHQL_PARSE_FAILED / _VALIDATION_FAILED. */
  prepare(query: string, operationName?: string): Prepared {
    const key = `${operationName ?? ''}\u0000${query}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.build(query, operationName);
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, p);
    }
    return p;
  }

  private build(query: string, operationName?: string): Prepared {
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch (e) {
      return {
        kind: 'error',
        errors: [new GraphQLError((e as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })],
      };
    }
    const invalid = validate(this.apiGraphQLSchema, document);
    if (invalid.length) {
      return {
        kind: 'error',
        errors: invalid.map(
          (e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
        ),
      };
    }
    const ops = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    const operation = operationName
      ? ops.find((o) => o.name?.value === operationName)
      : ops.length === 1
        ? ops[0]
        : undefined;
    if (!operation) {
      const message = operationName
        ? `Unknown operation named "${operationName}"`
        : 'Several operations in the document: name one with operationName';
      return { kind: 'error', errors: [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } })] };
    }
    if (operation.operation !== 'subscription') return { kind: operation.operation };
    try {
      const plan = this.planner.buildQueryPlan(operationFromDocument(this.apiSchema, document, { operationName }));
      const node = plan.node;
      if (node?.kind !== 'Subscription') throw new Error(`unexpected plan ${node?.kind}`);
      return {
        kind: 'subscription',
        plan: {
          document,
          operation,
          operationName,
          primary: node.primary,
          rest: node.rest,
          operationContext: buildOperationContext({
            schema: this.apiGraphQLSchema,
            operationDocument: document,
            operationName,
          }),
        },
      };
    } catch (e) {
      return {
        kind: 'error',
        errors: [
          new GraphQLError(`This subscription cannot be planned: ${(e as Error).message}`, {
            extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
          }),
        ],
      };
    }
  }
}
