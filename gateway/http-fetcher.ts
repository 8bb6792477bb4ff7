import { Agent, request } from 'node:http';

/** The slice of the fetch Response that @apollo/gateway's RemoteGraphQLDataSource reads. */
interface LeanResponse {
  ok: boolean;
  status: number;
  statusText: string;
  url: string;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/**
 * Subgraph fetches over plain `http.request` with pooled keep-alive sockets. The gateway's default
 * (make-fetch-happen) and Node's fetch (undici with web streams) both cost more CPU per call than the
 * subgraph spends answering it; profiles showed fetch as the gateway's largest single cost.
 * Every call has a deadline: a hung subgraph fails the fetch, never the gateway.
 */
export function createHttpFetcher(opts: { timeoutMs?: number; maxSockets?: number } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return function fetcher(
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: string },
  ): Promise<LeanResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { method: init.method ?? 'POST', headers: init.headers, agent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            resolve({
              ok: status >= 200 && status < 300,
              status,
              statusText: res.statusMessage ?? '',
              url,
              headers: { get: (name) => (res.headers[name.toLowerCase()] as string | undefined) ?? null },
              text: async () => text,
              json: async () => JSON.parse(text),
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`ETIMEDOUT: subgraph did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(init.body);
    });
  };
}
