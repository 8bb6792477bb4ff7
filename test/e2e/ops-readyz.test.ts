import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/embedded/free-port.ts';
import { createTestDatabase, INTERNAL_SECRET } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * A subgraph process is ready only while it can reach Postgres (docs/operations.md). Postgres is reached through
 * a TCP proxy the test controls: closing it (listener and every connection) is Postgres going away; opening it
 * on the same port is Postgres coming back; stalling it (connections kept, nothing passed on) is a network
 * partition, where nothing ever answers.
 */
let proxy: ReturnType<typeof tcpProxy>;
let child: ChildProcess;
let out = '';
let base: string;
let drop: () => Promise<void>;

function tcpProxy(target: { host: string; port: number }, port: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let stalled = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  return {
    open: () =>
      new Promise<void>((resolve, reject) => {
        stalled = false;
        server = createServer((client) => {
          if (stalled) return void track(client);
          const upstream = connect(target.port, target.host);
          track(client);
          track(upstream);
          client.pipe(upstream).on('close', () => client.destroy());
          upstream.pipe(client).on('close', () => upstream.destroy());
          client.on('close', () => upstream.destroy());
          upstream.on('close', () => client.destroy());
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    /** Bytes stop flowing both ways; new connections are accepted and never answered. */
    stall: () => {
      stalled = true;
      for (const s of sockets) s.unpipe();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server) return resolve();
        server.close(() => resolve());
        server = undefined;
      }),
  };
}

const readyz = async (signal?: AbortSignal) => {
  const res = await fetch(`${base}/readyz`, { signal }).catch((e) => {
    throw new Error(`${e}\n${out}`);
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() };
};

beforeAll(async () => {
  const database = await createTestDatabase();
  drop = database.drop;
  const real = new URL(database.url);
  const proxyPort = await freePort();
  proxy = tcpProxy({ host: real.hostname, port: Number(real.port || 5432) }, proxyPort);
  await proxy.open();
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxyPort);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['--import', 'tsx', 'bin/hub.ts', 'quality'], {
    env: {
      ...process.env,
      DATABASE_URL: viaProxy.toString(),
      HUB_CONFIG_DIR: '',
      HUB_INTERNAL_SECRET: INTERNAL_SECRET,
      PORT: String(port),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await until(
    `the quality subgraph ready\n${out}`,
    () => readyz().catch(() => undefined),
    (r) => r?.status === 200 || child.exitCode !== null,
    30_000,
  );
  expect(child.exitCode, out).toBeNull();
}, 60_000);

afterAll(async () => {
  // The proxy first: a query hung on a stalled connection would hold up the process's shutdown.
  await proxy?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
  await drop?.();
});

describe('/readyz and Postgres', () => {
  it('answers 503 with a JSON body while Postgres is unreachable, stays alive, and is ready again after', async () => {
    expect(await readyz()).toMatchObject({ status: 200, body: { status: 'ready' } });

    await proxy.close();
    const down = await until(
      'readyz to fail',
      () => readyz(),
      (r) => r.status !== 200,
    );
    expect(down.status).toBe(503);
    expect(down.type).toMatch(/^application\/json/);
    expect(down.body).toEqual({ status: 'not ready' });
    // Liveness is another question: the process is fine, only its database is away.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(child.exitCode, out).toBeNull();

    await proxy.open();
    const up = await until(
      'readyz to recover',
      () => readyz(),
      (r) => r.status === 200,
    );
    expect(up.body).toEqual({ status: 'ready' });
  });

  it('answers 503 when Postgres stops answering altogether (a partition), instead of hanging the probe', async () => {
    expect((await readyz()).status).toBe(200);
    proxy.stall();
    // The probe has a deadline of a few seconds; without one it waits on a query nobody will ever answer. The
    // client's limit is well above the deadline, and below the pool's 10 s connection timeout, which would
    // otherwise answer for the hub on a new connection.
    for (let i = 0; i < 2; i++) {
      const r = await readyz(AbortSignal.timeout(9_000));
      expect(r.status).toBe(503);
      expect(r.body).toEqual({ status: 'not ready' });
    }
    await proxy.close();
    await proxy.open();
    await until(
      'readyz to recover',
      () => readyz(),
      (r) => r.status === 200,
    );
    expect(child.exitCode, out).toBeNull();
  }, 40_000);
});
