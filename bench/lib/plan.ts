import { parse } from 'graphql';
import { QueryPlanner, prettyFormatQueryPlan, type FetchNode, type PlanNode } from '@apollo/query-planner';
import { Supergraph, operationFromDocument } from '@apollo/federation-internals';

export interface Fetch {
  service: string;
  /** The exact operation text the gateway sends to that subgraph. */
  operation: string;
  /** Entity fetches: the fields of each representation (`__typename` and a flat key). */
  requires: string[];
}

/** A plan of the shape "one root fetch, then entity fetches (in parallel) over the objects at `path`". */
export interface TwoStepPlan {
  pretty: string;
  root: Fetch;
  path: string[];
  entities: Fetch[];
}

const fetchOf = (n: FetchNode): Fetch => ({
  service: n.serviceName,
  operation: n.operation,
  requires: (n.requires ?? []).flatMap((s) =>
    s.kind === 'InlineFragment' ? s.selections.flatMap((f) => (f.kind === 'Field' ? [f.name] : [])) : [],
  ),
});

/**
 * Plans `query` with the same query planner as @apollo/gateway, so the direct baseline issues the fetches
 * the gateway does. Throws (showing the plan) if the plan is not the two-step shape the baseline replays.
 */
export function planQuery(supergraphSdl: string, query: string): TwoStepPlan {
  const supergraph = Supergraph.build(supergraphSdl);
  const plan = new QueryPlanner(supergraph).buildQueryPlan(operationFromDocument(supergraph.schema, parse(query)));
  const pretty = prettyFormatQueryPlan(plan);
  const fail = (why: string) => new Error(`the direct baseline cannot replay this plan (${why}):\n${pretty}`);

  const seq = plan.node;
  if (seq?.kind !== 'Sequence' || seq.nodes.length !== 2 || seq.nodes[0]!.kind !== 'Fetch')
    throw fail('expected Sequence[Fetch, ...]');
  const second: PlanNode = seq.nodes[1]!;
  const flattens = second.kind === 'Parallel' ? second.nodes : [second];
  const entities: Fetch[] = [];
  let path: string[] | undefined;
  for (const f of flattens) {
    if (f.kind !== 'Flatten' || f.node.kind !== 'Fetch') throw fail('expected Flatten(Fetch) entity fetches');
    const p = f.path.map(String);
    if (path && p.join('.') !== path.join('.')) throw fail('entity fetches at different paths');
    path = p;
    entities.push(fetchOf(f.node));
  }
  return { pretty, root: fetchOf(seq.nodes[0] as FetchNode), path: path!, entities };
}
