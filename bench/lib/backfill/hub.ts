/**
 * The hub's side of the backfill bench: a fresh database with the machines the tags are mapped onto, the config
 * directory a plant engineer would write (hub.yml, historian.yml), the hub as deployed (`bin/hub.ts all`: gateway,
 * subgraphs, job runner and pipeline in one process; ingest idle on its embedded broker), and the GraphQL calls.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { signUserToken } from '../../../lib/auth/tokens.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET, createBenchDatabase } from '../env.ts';
import { onCleanup, startChild, tsxArgs, waitForHttp, type Child } from '../proc.ts';
import { HISTORIAN, sleep, tagPath } from './common.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MACHINES = 10;
const machineId = (m: number) => `BENCH-M${m + 1}`;
/** The fake's default Basic credentials (test/fakes/pi-web-api.ts); the password reaches historian.yml by ${VAR}. */
const PI_PASSWORD = 'pi-password-1';

/** A fresh database migrated by the hub's own code, with one site, one line and the machines to map onto. */
export async function setupDatabase(name: string): Promise<string> {
  const { openDatabase } = await import('../../../lib/db/open.ts');
  const { insertLine, insertMachine, insertSite } = await import('../../../subgraphs/production/production.repo.ts');
  const url = await createBenchDatabase(name);
  const db = await openDatabase(url, 2);
  try {
    await insertSite(db, { id: 'BENCH-SITE', name: 'Bench site' });
    await insertLine(db, { id: 'BENCH-LINE', siteId: 'BENCH-SITE', name: 'Bench line' });
    for (let m = 0; m < MACHINES; m++)
      await insertMachine(db, { id: machineId(m), lineId: 'BENCH-LINE', name: `Bench machine ${m + 1}` });
  } finally {
    await db.destroy();
  }
  return url;
}

export interface HubConfig {
  piUrl: string;
  tags: number;
  maxCount: number;
  gatewayPort: number;
}

/** hub.yml and historian.yml as a plant engineer would write them for this run; returns the directory. */
export function writeConfig(c: HubConfig): { dir: string; historianYml: string } {
  const dir = mkdtempSync(join(tmpdir(), 'oee-bench-backfill-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'hub.yml'),
    `# written by bench/scenarios/backfill.ts
gateway: { host: 127.0.0.1, port: ${c.gatewayPort} }
# An idle runner asks for work every 0.5 s: the job starts within that of the mutation.
jobs: { pollingIntervalSeconds: 0.5 }
`,
  );
  const mappings = Array.from(
    { length: c.tags },
    (_, i) =>
      `  - { historian: ${HISTORIAN}, tag: ${JSON.stringify(tagPath(i))}, machineId: ${machineId(i % MACHINES)}, ` +
      'signalType: flow, unit: m3/h }',
  ).join('\n');
  // Timeouts long enough for a batch of 100 × maxCount values on a busy 2-core machine; the frontfill off, so
  // that only the backfill reads.
  const historianYml = `# written by bench/scenarios/backfill.ts
historians:
  - name: ${HISTORIAN}
    type: pi-web-api
    maxCount: ${c.maxCount}
    connection:
      baseUrl: ${c.piUrl}
      auth: { type: basic, username: piuser, password: "\${PI_PASSWORD}" }
      timeoutSeconds: 60
backfill: { leaseSeconds: 30, checkpointMs: 500, maxTagAttempts: 3 }
frontfill: { enabled: false }
tagMappings:
`;
  writeFileSync(join(dir, 'historian.yml'), `${historianYml}${mappings}\n`);
  return { dir, historianYml };
}

export interface Hub {
  child: Child;
  pid: number;
  url: string;
  token: string;
}

/**
 * `node --import tsx bin/hub.ts all` on the bench database; up once the gateway answers /healthz and every
 * mapping of historian.yml is made (the historian subgraph makes them at start, resolving the tags on the fake).
 */
export async function startHub(databaseUrl: string, configDir: string, port: number, pgc: pg.Client, tags: number) {
  const [node, args] = tsxArgs(`${ROOT}bin/hub.ts`, 'all');
  // BENCH_HUB_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": to profile the hub under this load.
  args.unshift(...(process.env.BENCH_HUB_NODE_ARGS?.split(' ').filter(Boolean) ?? []));
  const child = await startChild('backfill-hub', node, args, {
    cwd: ROOT,
    readyLine: false,
    env: {
      DATABASE_URL: databaseUrl,
      // No broker named: the hub's own embedded one, so its idle ingest touches nothing outside this run.
      MQTT_URL: '',
      HUB_CONFIG_DIR: configDir,
      HUB_JWT_SECRET: BENCH_JWT_SECRET,
      HUB_INTERNAL_SECRET: BENCH_INTERNAL_SECRET,
      HUB_DEMO_SEED: 'false',
      PI_PASSWORD,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
    },
  });
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, child, 120_000);
  const until = Date.now() + 60_000;
  for (;;) {
    const { rows } = await pgc.query<{ n: number }>(
      `select count(*)::int as n from historian.tag_mappings m join telemetry.series s on s.tag_mapping_id = m.id
       where m.historian = $1`,
      [HISTORIAN],
    );
    if (rows[0]!.n === tags) break;
    if (Date.now() > until) throw new Error(`${rows[0]!.n} of ${tags} mappings made in 60 s; see ${child.logFile}`);
    await sleep(200);
  }
  const token = await signUserToken(BENCH_JWT_SECRET, { sub: 'bench-engineer', role: 'engineer' });
  return { child, pid: child.proc.pid!, url: `http://127.0.0.1:${port}/graphql`, token } satisfies Hub;
}

export async function gql<T>(hub: Hub, query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(hub.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown };
  if (!body.data) throw new Error(`GraphQL ${res.status}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export const START = `mutation($i: StartBackfillInput!) { startBackfill(input: $i) { id status } }`;
export const PROGRESS = `query($id: ID!) { backfillProgress(jobId: $id) {
  status running error pointsFetched pointsImported pointsRejected pointsDuplicate tagsCompleted tagsFailed } }`;

export interface Progress {
  status: string;
  running: boolean;
  error: string | null;
  pointsFetched: number;
  pointsImported: number;
  pointsRejected: number;
  pointsDuplicate: number;
  tagsCompleted: number;
  tagsFailed: number;
}
