import type { TwoStepPlan } from './plan.ts';
import { postGraphQL } from './http.ts';

/** The objects at a plan path (`@` = every element of a list), e.g. line.machines.@ → the machines. */
function objectsAt(value: any, path: string[]): any[] {
  if (value == null) return [];
  if (!path.length) return [value];
  const [head, ...rest] = path;
  return head === '@' ? (value as any[]).flatMap((v) => objectsAt(v, rest)) : objectsAt(value[head!], rest);
}

/**
 * The "no gateway" baseline: replays a query plan straight against the subgraphs, with the same
 * operations, variables and internal header the gateway sends. One call = root fetch, then every entity fetch
 * in parallel, their fields merged into the root objects (the data the gateway would answer with). The headers
 * (the internal token) are given per call, so a run can send one token or a different one per request.
 */
export function directRequest(
  plan: TwoStepPlan,
  subgraphUrls: Record<string, string>,
  variables: Record<string, unknown>,
): (headers: Record<string, string>) => Promise<any> {
  const url = (service: string) => {
    const u = subgraphUrls[service];
    if (!u) throw new Error(`no URL for subgraph ${service}`);
    return new URL(u);
  };
  const rootUrl = url(plan.root.service);
  const rootBody = JSON.stringify({ query: plan.root.operation, variables });
  const entityFetches = plan.entities.map((f) => ({ ...f, url: url(f.service) }));

  return async (headers) => {
    const { data } = await postGraphQL(rootUrl, headers, rootBody);
    const objects = objectsAt(data, plan.path);
    if (!objects.length) return data;
    await Promise.all(
      entityFetches.map(async (f) => {
        const representations = objects.map((o) => Object.fromEntries(f.requires.map((k) => [k, o[k]])));
        const res = await postGraphQL(
          f.url,
          headers,
          JSON.stringify({ query: f.operation, variables: { representations } }),
        );
        (res.data._entities as object[]).forEach((e, i) => {
          Object.assign(objects[i], e);
        });
      }),
    );
    return data;
  };
}
