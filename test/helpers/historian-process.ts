import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signUserToken } from '../../lib/auth/tokens.ts';
import type { Role } from '../../lib/auth/viewer.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { PROGRESS } from './historian-hub.ts';
import { INTERNAL_SECRET, JWT_SECRET } from './hub.ts';
import { until } from './until.ts';

/** A hub run as `tsx bin/hub.ts all` in a child process, so a test can SIGKILL it mid-job and start another. */
export interface HubProcess {
  child: ChildProcess;
  /** The gateway's /graphql. */
  url: string;
  exited: Promise<number | null>;
  log: () => string;
  gql: (token: string, query: string, variables?: Record<string, unknown>) => Promise<{ status: number; body: any }>;
  /** SIGKILL: no shutdown hook runs, no checkpoint is written, the lease is not let go. */
  kill: () => Promise<void>;
}

/**
 * The config dir's hub.yml for a child hub: subgraphs and gateway on local ports only, and a job runner that polls
 * twice a second so a restarted process takes the job over soon after its lease runs out. iot.yml turns the live
 * channel off: the child shares the machine's broker with the other test files and has nothing to publish.
 */
export function writeProcessConfig(dir: string): void {
  writeFileSync(join(dir, 'hub.yml'), 'gateway: { host: 127.0.0.1 }\njobs: { pollingIntervalSeconds: 0.5 }\n');
  writeFileSync(join(dir, 'iot.yml'), 'live: { enabled: false }\n');
}

export const token = (role: Role, sub: string) => signUserToken(JWT_SECRET, { sub, role });

/** Starts the `all` role on `databaseUrl` (seeding the demo plant on the first start), ready once /readyz says so. */
export async function startHubProcess(o: {
  databaseUrl: string;
  configDir: string;
  env?: Record<string, string>;
}): Promise<HubProcess> {
  const port = await freePort();
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/hub.ts', 'all'], {
    env: {
      ...process.env,
      ...o.env,
      DATABASE_URL: o.databaseUrl,
      HUB_CONFIG_DIR: o.configDir,
      HUB_JWT_SECRET: JWT_SECRET,
      HUB_INTERNAL_SECRET: INTERNAL_SECRET,
      HUB_DEMO_SEED: 'true',
      PORT: String(port),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const base = `http://127.0.0.1:${port}`;
  const ready = async () => {
    if (child.exitCode !== null) throw new Error(`the hub exited early:\n${out}`);
    return fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
  };
  await until('the child hub ready', ready, Boolean, 45_000, 100).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${out}`);
  });
  const url = `${base}/graphql`;
  return {
    child,
    url,
    exited,
    log: () => out,
    gql: async (tok, query, variables = {}) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: await res.json() };
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Polls the job through the child's gateway until it is in one of `statuses`. */
export async function jobInProcess(hub: HubProcess, tok: string, id: string, statuses: string[], ms = 60_000) {
  const read = async () => (await hub.gql(tok, PROGRESS, { id })).body.data?.backfillProgress;
  return until(`backfill ${id} in ${statuses.join('/')}`, read, (j) => statuses.includes(j?.status), ms, 100);
}
