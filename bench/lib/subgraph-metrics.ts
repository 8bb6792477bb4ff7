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
