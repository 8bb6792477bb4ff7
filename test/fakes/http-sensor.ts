import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An in-process HTTP sensor for tests: each path serves one JSON sensor document in a mode the test can switch
 * while the server runs. Paths without a mode answer 404.
 *
 *   ok         200, { sensor, seq, value, ts }: seq counts the documents served, value = 20 + seq/2, ts = now (ISO)
 *   slow       the same document after opts.delayMs (default 1000) on the current clock; fake timers delay it too
 *   hang       accepts the request and never answers
 *   trickle    200 with headers and the first bytes of a document, then nothing (a socket that stalls mid-body)
 *   500 / 429  an error status with a small JSON body (429 with Retry-After: 1)
 *   malformed  200 application/json with a truncated document: {"value": 12.
 *   html       200 text/html (a login page where JSON was expected)
 */
export type SensorMode = 'ok' | 'slow' | 'hang' | 'trickle' | '500' | '429' | 'malformed' | 'html';

export interface SensorModeOptions {
  /** For `slow`. */
  delayMs?: number;
  /** The document's `sensor` field; default: the path without its leading slash. */
  sensor?: string;
}

export interface SensorDoc {
  sensor: string;
  seq: number;
  value: number;
  ts: string;
}

export interface FakeHttpSensor {
  /** http://127.0.0.1:<port>, without a trailing slash. */
  url: string;
  setMode(path: string, mode: SensorMode, opts?: SensorModeOptions): void;
  /** Requests received for a path, whatever the mode. */
  requests(path: string): number;
  /** The documents served on a path, oldest first (ok and slow modes). */
  served(path: string): SensorDoc[];
  /** Client connections open right now (a leaked keep-alive or hung socket shows here). */
  openConnections(): number;
  close(): Promise<void>;
}

export const MALFORMED_BODY = '{"value": 12.';
export const HTML_BODY = '<!doctype html><html><body><form>Login</form></body></html>';

export async function startHttpSensor(): Promise<FakeHttpSensor> {
  const modes = new Map<string, { mode: SensorMode; opts: SensorModeOptions }>();
  const counts = new Map<string, number>();
  const docs = new Map<string, SensorDoc[]>();
  const sockets = new Set<Socket>();
  const pending = new Set<ReturnType<typeof setTimeout>>();

  const sendDoc = (res: ServerResponse, path: string, opts: SensorModeOptions) => {
    const list = docs.get(path) ?? [];
    docs.set(path, list);
    const seq = list.length + 1;
    const doc: SensorDoc = {
      sensor: opts.sensor ?? path.replace(/^\//, ''),
      seq,
      value: 20 + seq / 2,
      ts: new Date().toISOString(),
    };
    list.push(doc);
    send(res, 200, 'application/json', JSON.stringify(doc));
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const m = modes.get(path);
    if (!m) return send(res, 404, 'application/json', '{"error":"no such sensor"}');
    switch (m.mode) {
      case 'ok':
        return sendDoc(res, path, m.opts);
      case 'slow': {
        const t = setTimeout(() => {
          pending.delete(t);
          if (!res.destroyed) sendDoc(res, path, m.opts);
        }, m.opts.delayMs ?? 1000);
        pending.add(t);
        // The client gave up: no answer is due any more, and the timer must not outlive the request.
        res.on('close', () => {
          clearTimeout(t);
          pending.delete(t);
        });
        return;
      }
      case 'hang':
        return;
      case 'trickle':
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 200 });
        res.write('{"sensor": "T", "val');
        return;
      case '500':
        return send(res, 500, 'application/json', '{"error":"internal"}');
      case '429':
        res.setHeader('Retry-After', '1');
        return send(res, 429, 'application/json', '{"error":"slow down"}');
      case 'malformed':
        return send(res, 200, 'application/json', MALFORMED_BODY);
      case 'html':
        return send(res, 200, 'text/html; charset=utf-8', HTML_BODY);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    setMode: (path, mode, opts = {}) => void modes.set(path, { mode, opts }),
    requests: (path) => counts.get(path) ?? 0,
    served: (path) => [...(docs.get(path) ?? [])],
    openConnections: () => sockets.size,
    close: async () => {
      for (const t of pending) clearTimeout(t);
      pending.clear();
      // Hung requests would keep server.close() waiting forever.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The name the test briefs use. */
export const start = startHttpSensor;

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
