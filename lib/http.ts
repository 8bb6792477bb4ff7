import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express, NextFunction, Request, Response } from 'express';
import type { Registry } from 'prom-client';

/** A readiness check that has not answered by then has failed: a database nobody answers must not hang the probe. */
export const READY_DEADLINE_MS = 3000;

/** Health, readiness and Prometheus routes, the same on the gateway and every subgraph. */
export function mountOps(app: Express, registry: Registry, ready: () => Promise<boolean>): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), READY_DEADLINE_MS);
    });
    const ok = await Promise.race([ready().catch(() => false), late]);
    clearTimeout(timer);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
}

export interface Listening {
  server: Server;
  url: string;
  port: number;
  close: () => Promise<void>;
}

/** Listens on host:port (0 = a free port) and returns the URL; close() ends keep-alive sockets too. */
export async function listen(app: Express | Server, host: string, port: number, path = ''): Promise<Listening> {
  const server = 'listen' in app && !('use' in app) ? (app as Server) : createServer(app as Express);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return {
    server,
    port: addr.port,
    url: `http://${shownHost}:${addr.port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Errors of the multipart parser (graphql-upload-ts, busboy: a missing boundary, a truncated form, a file over a
 * limit) as JSON GraphQL errors, never Express's HTML page with a stack.
 */
export function multipartErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(err);
    return;
  }
  const e = err as { status?: number; message?: string };
  const status = e?.status === 413 ? 413 : 400;
  const message =
    e?.status === 413 || e?.status === 400
      ? (e.message ?? 'malformed multipart request')
      : 'malformed multipart request';
  res.status(status).json({ errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }] });
}
