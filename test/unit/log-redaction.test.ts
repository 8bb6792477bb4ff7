import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureLog, log } from '../../lib/log.ts';

/**
 * docs/security.md: "Tokens and the internal header are redacted from logs." The hub's logger is given what a
 * real request carries, as a request logger or an error handler would log it: the headers Node parsed from the
 * wire, alone or inside a request object, and a child logger's lines.
 */
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.user-token-body.user-token-signature';
const INTERNAL = 'eyJhbGciOiJIUzI1NiJ9.internal-token-body.internal-token-signature';
const lines: string[] = [];
let server: Server;
let url: string;
let received: Promise<IncomingMessage>;

beforeAll(async () => {
  configureLog({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
  let got: (req: IncomingMessage) => void;
  received = new Promise((r) => (got = r));
  server = createServer((req, res) => {
    got(req);
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  // The request a gateway sends a subgraph: the user's bearer token and the gateway's signed header.
  await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${BEARER}`, 'x-hub-internal': INTERNAL } });
});

afterAll(async () => {
  configureLog({ level: 'silent' });
  await new Promise<void>((r) => server.close(() => r()));
});

const written = (from: number) => lines.slice(from).map((l) => JSON.parse(l) as Record<string, any> & { msg: string });

describe('the log redacts tokens and the internal header', () => {
  it.each([
    ['the headers object', (req: IncomingMessage) => ({ headers: req.headers })],
    [
      'a request object',
      (req: IncomingMessage) => ({ req: { method: req.method, url: req.url, headers: req.headers } }),
    ],
  ])('%s, as a real request brought them', async (_what, fields) => {
    const req = await received;
    const from = lines.length;
    log.warn(fields(req), 'request seen');
    log.child({ source: 'iot' }).error(fields(req), 'request seen by a child logger');
    const out = written(from);
    expect(out.map((l) => l.msg)).toEqual(['request seen', 'request seen by a child logger']);
    for (const l of out) {
      const text = JSON.stringify(l);
      expect(text).not.toContain(BEARER);
      expect(text).not.toContain(INTERNAL);
      const headers = l.headers ?? l.req.headers;
      expect(headers.authorization).toBe('[redacted]');
      expect(headers['x-hub-internal']).toBe('[redacted]');
      // The rest of the request is still there to tell what it was.
      expect(headers.host).toBe(new URL(url).host);
    }
  });

  it('leaves the request itself unchanged: redaction works on what is written', async () => {
    const req = await received;
    log.info({ req: { headers: req.headers } }, 'seen');
    expect(req.headers.authorization).toBe(`Bearer ${BEARER}`);
    expect(req.headers['x-hub-internal']).toBe(INTERNAL);
  });

  it('names the service once per line, as configureLog set it', () => {
    configureLog({ service: 'ingest' });
    const from = lines.length;
    log.child({ source: 'mqtt' }).info('one line');
    expect(lines.slice(from).map((l) => l.match(/"service":/g)?.length)).toEqual([1]);
    expect(written(from)[0]!.service).toBe('ingest');
  });
});
