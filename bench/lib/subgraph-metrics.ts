/**
 * How many GraphQL operations the subgraphs have served so far (sum of hub_graphql_operations_total over all
 * of them). Read before and after a measured run, it shows how many subgraph fetches one client request cost:
 * 3 for our gateway and the direct baseline with the current plan; fewer means something skipped or shared work.
 */
export async function subgraphOperations(subgraphUrls: Record<string, string>): Promise<number> {
  let total = 0;
  for (const url of Object.values(subgraphUrls)) {
    const text = await (await fetch(url.replace(/\/graphql$/, '/metrics'))).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('hub_graphql_operations_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

/** One metric of a service (the first sample of `name`, labelled or not), from its /metrics; 0 when absent or down. */
export async function metricValue(graphqlUrl: string, name: string): Promise<number> {
  const text = await fetch(graphqlUrl.replace(/\/graphql$/, '/metrics')).then(
    (r) => r.text(),
    () => '',
  );
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}
