import http from 'node:http';

// Keep-alive like autocannon and like the gateway's own subgraph client, so no run pays TCP setup per request.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface GraphQLBody {
  data?: any;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/**
 * POSTs a GraphQL request over plain node:http (lighter than fetch, so the direct baseline's client side costs
 * little) and throws on a non-200 status or a GraphQL `errors` array.
 */
export function postGraphQL(url: URL, headers: Record<string, string>, body: string): Promise<GraphQLBody> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: GraphQLBody;
          try {
            json = JSON.parse(text);
          } catch {
            return reject(new Error(`${url} answered ${res.statusCode} with a non-JSON body: ${text.slice(0, 200)}`));
          }
          if (res.statusCode !== 200 || json.errors?.length) {
            return reject(
              new Error(`${url} answered ${res.statusCode}: ${JSON.stringify(json.errors ?? json).slice(0, 300)}`),
            );
          }
          resolve(json);
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}
