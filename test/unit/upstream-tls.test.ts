import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionSchema } from '../../lib/config/connection.ts';
import { UpstreamError } from '../../lib/connectors/errors.ts';
import { UpstreamClient } from '../../lib/connectors/http.ts';

/**
 * A historian or MES behind a certificate of the plant's own CA: refused by default, trusted with `tls.caFile`
 * (beside the system's CAs), or unchecked with `tls.rejectUnauthorized: false`. The certificate is made for the run.
 */
let server: Server;
let base: string;
let caFile: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-tls-'));
  caFile = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      caFile,
    ],
    { stdio: 'ignore' },
  );
  server = createServer({ key: readFileSync(key), cert: readFileSync(caFile) }, (_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const client = (tls?: Record<string, unknown>) =>
  new UpstreamClient(
    'PLANT',
    ConnectionSchema.parse({ baseUrl: base, timeoutSeconds: 2, retry: { maxAttempts: 1 }, ...(tls ? { tls } : {}) }),
  );

describe('TLS of a connection', () => {
  it('refuses a certificate of an unknown CA with a typed error', async () => {
    const e = await client()
      .request({ url: '/x' })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).code).toBe('UPSTREAM_UNAVAILABLE');
    expect((e as UpstreamError).message).toMatch(/self.signed|certificate/i);
  });

  it('trusts it with tls.caFile, and without checking with rejectUnauthorized: false', async () => {
    expect((await client({ caFile }).request({ url: '/x' })).json()).toEqual({ ok: true });
    expect((await client({ rejectUnauthorized: false }).request({ url: '/x' })).json()).toEqual({ ok: true });
  });

  it('a CA file that cannot be read stops the config, naming it', () => {
    const r = ConnectionSchema.safeParse({ baseUrl: base, tls: { caFile: '/nonexistent/ca.pem' } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ path: ['tls', 'caFile'] });
    expect(r.error!.issues[0]!.message).toMatch(/cannot be read/);
  });
});
