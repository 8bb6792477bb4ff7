import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A dashboard's graphql-ws client on the gateway (same path as HTTP), authenticated with the same JWT. */
export function wsClient(httpUrl: string, token: string): Client {
  return createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
}

export interface Recorded {
  events: any[];
  errors: any[] | undefined;
  completed: boolean;
  dispose: () => void;
}

/** Subscribes and records what arrives: events, a terminal error (as graphql-ws reports it), completion. */
export function record(client: Client, query: string, variables: Record<string, unknown> = {}): Recorded {
  const r: Recorded = { events: [], errors: undefined, completed: false, dispose: () => {} };
  r.dispose = client.subscribe(
    { query, variables },
    {
      next: (v) => void r.events.push(v),
      error: (e) => {
        r.errors = Array.isArray(e) ? e : [e];
      },
      complete: () => {
        r.completed = true;
      },
    },
  );
  return r;
}
