import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamError } from '../../lib/connectors/errors.ts';
import { UpstreamClient } from '../../lib/connectors/http.ts';

/** What the shared HTTP client makes of bodies that arrive oddly: a byte order mark, a cut-off body, a huge one. */
let server: Server;
let base: string;
const hits = new Map<string, number>();
const routes: Record<string, (res: ServerResponse, hit: number) => void> = {
  // IIS and .NET services often start UTF-8 JSON with EF BB BF.
  '/bom': (res) => {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"order":"WO-1"}')]));
  },
  // Announces 1000 bytes, sends 10 and drops the connection; the third attempt gets a whole answer.
  '/cut': (res, hit) => {
    if (hit >= 3) return void res.end('{"ok":true}');
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"orders":');
    setTimeout(() => res.socket?.destroy(), 20);
  },
  '/big': (res) => res.end(`{"pad":"${'x'.repeat(10_000)}"}`),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url!.split('?')[0]!;
    const hit = (hits.get(path) ?? 0) + 1;
    hits.set(path, hit);
    routes[path]?.(res, hit);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const client = (maxBodyBytes?: number) =>
  new UpstreamClient(
    'TEST',
    {
      baseUrl: base,
      auth: { type: 'none' },
      timeoutSeconds: 2,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      headers: {},
    },
    { maxBodyBytes },
  );

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as UpstreamError,
  );

describe('the shared upstream HTTP client', () => {
  it('parses JSON that starts with a byte order mark', async () => {
    const res = await client().request({ url: '/bom' });
    expect(res.json()).toEqual({ order: 'WO-1' });
  });

  it('takes a body cut off mid-stream for a dropped connection, and retries it', async () => {
    const res = await client().request({ url: '/cut' });
    expect(res.json()).toEqual({ ok: true });
    expect(hits.get('/cut')).toBe(3);
  });

  it('follows a link to another origin on its own one: its credentials never leave', async () => {
    const elsewhere: string[] = [];
    const other = createServer((req, res) => {
      elsewhere.push(req.headers.authorization ?? '');
      res.end('{}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    try {
      const c = new UpstreamClient('TEST', {
        baseUrl: base,
        auth: { type: 'basic', username: 'hub', password: 'pw' },
        timeoutSeconds: 2,
        retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
        headers: {},
      });
      const before = hits.get('/bom') ?? 0;
      const link = `http://127.0.0.1:${(other.address() as AddressInfo).port}/bom?page=2`;
      expect((await c.request({ url: link })).json()).toEqual({ order: 'WO-1' });
      expect(hits.get('/bom')).toBe(before + 1);
      expect(elsewhere).toEqual([]);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it('refuses a body over maxBodyBytes as a bad response, without retrying', async () => {
    const e = await failure(client(1000).request({ url: '/big' }));
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('UPSTREAM_BAD_RESPONSE');
    expect(hits.get('/big')).toBe(1);
  });
});
