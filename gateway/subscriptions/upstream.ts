import { createClient, type Client, type Sink } from 'graphql-ws';
import WebSocket from 'ws';

export interface UpstreamPayload {
  query: string;
  operationName?: string;
  variables: Record<string, unknown>;
  extensions: Record<string, unknown>;
}

/**
 * One multiplexed graphql-ws connection per subgraph, however many subscription groups use it. The client does
 * not retry by itself (retryAttempts 0): a resubscription must carry a freshly signed token, so the engine
 * resubscribes each group with backoff and decides when to give up. Lazy: the socket opens with the first
 * subscription and closes a second after the last.
 */
export class Upstreams {
  private readonly clients = new Map<string, Client>();

  constructor(
    private readonly urls: Record<string, string>,
    private readonly connectionToken: () => Promise<string>,
  ) {}

  subscribe(service: string, payload: UpstreamPayload, sink: Sink): () => void {
    return this.client(service).subscribe(payload, sink);
  }

  private client(service: string): Client {
    let c = this.clients.get(service);
    if (!c) {
      const url = this.urls[service];
      if (!url) throw new Error(`no URL for subgraph ${service}`);
      c = createClient({
        url: url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        lazy: true,
        lazyCloseTimeout: 1000,
        retryAttempts: 0,
        keepAlive: 10_000,
        connectionParams: async () => ({ internalToken: await this.connectionToken() }),
      });
      this.clients.set(service, c);
    }
    return c;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.dispose()));
    this.clients.clear();
  }
}
