import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signUserToken } from '../../lib/auth/tokens.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { until } from '../helpers/until.ts';

/**
 * `npm start` as a newcomer runs it: `tsx bin/hub.ts all` with no configuration at all — no DATABASE_URL, no
 * MQTT_URL, no secrets — so embedded Postgres and an embedded broker, secrets generated into the data folder, the
 * demo plant seeded. Then `hub token` mints a token from that folder, and a second start finds everything again.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'hub-all-'));
const running: ChildProcess[] = [];
afterAll(async () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(running.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : null)));
  rmSync(dataDir, { recursive: true, force: true });
});

/** The environment of someone who configured nothing: what the test runner itself was given is taken away. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(DATABASE_URL|MQTT_URL|PORT|LOG_LEVEL|HUB_.*)$/.test(k)) delete env[k];
  return { ...env, HUB_DATA_DIR: dataDir, ...extra };
}

function hub(args: string[], extra: Record<string, string> = {}) {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/hub.ts', ...args], {
    env: userEnv(extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  running.push(child);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, out: () => out };
}

/** `npm start`, until its banner (printed once everything runs, the demo seeded). */
async function startAll(port: number) {
  const p = hub(['all'], { PORT: String(port) });
  await until(
    'the banner of `hub all`',
    async () => p.out(),
    (o) => o.includes('OEE data hub is running') || p.child.exitCode !== null,
    50_000,
    200,
  );
  expect(p.child.exitCode, p.out()).toBeNull();
  return p;
}

async function stop(p: ReturnType<typeof hub>) {
  p.child.kill('SIGTERM');
  expect(await p.exited, p.out()).toBe(0);
}

async function mintToken(role: string, sub: string) {
  const t = hub(['token', '--role', role, '--sub', sub]);
  expect(await t.exited, t.out()).toBe(0);
  return t.out().trim();
}

const gql = async (port: number, token: string, query: string) => {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as any };
};

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
const siteIds = async (port: number, token: string) => {
  const r = await gql(port, token, '{ sites { nodes { id } } }');
  expect(r.body.errors, JSON.stringify(r.body)).toBeUndefined();
  return r.body.data.sites.nodes.map((s: { id: string }) => s.id).sort();
};

describe('npm start with nothing configured', () => {
  it(`generates its secrets into the data folder, accepts tokens from \`hub token\`, and a second start reuses \
the data and the secrets`, async () => {
    const port = await freePort();
    const first = await startAll(port);

    // Generated, kept where docs/configuration.md says, readable by the owner only.
    const file = join(dataDir, 'secrets.json');
    const secrets = JSON.parse(readFileSync(file, 'utf8'));
    expect(secrets.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(secrets.internalSecret.length).toBeGreaterThanOrEqual(32);
    expect(secrets.jwtSecret).not.toBe(secrets.internalSecret);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // The embedded cluster lives in the data folder too.
    expect(statSync(join(dataDir, 'pg', 'PG_VERSION')).isFile()).toBe(true);

    // `hub token` (with only HUB_DATA_DIR, as the banner says) signs with the generated secret.
    const alice = await mintToken('admin', 'alice');
    expect(claims(alice)).toMatchObject({ sub: 'alice', roles: ['admin'] });
    // The demo plant (app/demo/seed.ts) was seeded through the API.
    expect(await siteIds(port, alice)).toEqual(['SITE-1']);
    const made = await gql(port, alice, 'mutation { createSite(input: { id: "RUN-1", name: "First run" }) { id } }');
    expect(made.body).toEqual({ data: { createSite: { id: 'RUN-1' } } });
    // A token signed with anything but the generated secret is refused: the gateway really checks.
    const stranger = await signUserToken('not-the-generated-secret-0123456789abcdef', { sub: 'x', role: 'admin' });
    expect((await gql(port, stranger, '{ sites { nodes { id } } }')).status).toBe(401);
    await stop(first);

    // Second start: the same data folder, so the same cluster, the same secrets, and no second seeding.
    const second = await startAll(port);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(secrets);
    expect(await siteIds(port, alice)).toEqual(['RUN-1', 'SITE-1']);
    const viewer = await mintToken('viewer', 'bob');
    expect(claims(viewer)).toMatchObject({ sub: 'bob', roles: ['viewer'] });
    expect(await siteIds(port, viewer)).toEqual(['RUN-1', 'SITE-1']);
    await stop(second);
  }, 120_000);
});
