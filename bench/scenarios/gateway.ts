/**
 * Gateway overhead: one cross-subgraph query (a line → machines → sensors, latest readings, open alerts),
 * measured one target after another with the same duration and connection count:
 *   1. our gateway  2. the same fetches straight against the subgraphs  3. Hive Gateway on our supergraph
 *   (like-for-like, then once more with its defaults).
 * Layout: subgraphs in one child process, our gateway in another, Hive in a third (only while measured),
 * the load generator here. See bench/README.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { BenchOptions } from '../run.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { HIVE_BIN, withSubgraphUrls } from '../lib/hive.ts';
import { createUserTokenVerifier, signInternalToken, signUserToken } from '../../lib/auth/tokens.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET, dropBenchDatabase, postgresBackendPids } from '../lib/env.ts';
import { onCleanup, startChild, tsxArgs, waitForHttp } from '../lib/proc.ts';
import { planQuery } from '../lib/plan.ts';
import { directRequest } from '../lib/direct.ts';
import { autocannonRun, closedLoop, ms, stats, type HttpTarget, type Sample, type Stats } from '../lib/load.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';
import { subgraphOperations } from '../lib/subgraph-metrics.ts';
import { cpuMeter } from '../lib/cpu.ts';

const QUERY =
  'query($id: ID!){ line(id:$id){ id name machines { id name sensors { id type unit } latestReadings { value ts ' +
  'quality sensor { id } } openAlerts { id type severity message } } } }';
const VARIABLES = { id: 'LINE-1' };
/**
 * The subgraphs process is fresh: under load its CPU per request keeps falling for ~10 s (JIT). Without this the
 * first target measured pays for it (seen as ~35% more subgraph CPU per request than for the later ones).
 */
const subgraphWarmup = (o: BenchOptions) => (o.quick ? 8 : 15);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HIVE_CONFIG = fileURLToPath(new URL('../hive/gateway.config.ts', import.meta.url));
/** Above this share of the machine's CPU used by other processes while measuring, the figures are suspect. */
const NOISY_SHARE = 0.1;

const say = (s = '') => console.log(s);
const healthz = (graphqlUrl: string) => graphqlUrl.replace(/\/graphql$/, '/healthz');

type Measured = Stats & {
  subgraphFetchesPerRequest: number;
  /**
   * CPU ms per request of: the gateway process (0 for direct), the subgraphs, their Postgres backends, the bench
   * client.
   */
  cpuMsPerRequest: Record<'gateway' | 'subgraphs' | 'postgres' | 'client', number>;
  /** Share of the machine's CPU used by unrelated processes while measuring. */
  otherCpuShare: number;
};

/** What every target shares: the running subgraphs, the bench user and the answer they must all give. */
interface Env {
  dbName: string;
  subgraphUrls: Record<string, string>;
  subgraphsPid: number;
  userToken: string;
  internalToken: string;
  body: string;
  reference: unknown;
}

/** Key-order-insensitive comparison of answers; `__typename` only exists in the direct (subgraph) answers. */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([k]) => k !== '__typename');
    return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}

/** One request must answer 200 with exactly the reference data (what the subgraphs hold), or we abort. */
async function checkOnce(label: string, t: HttpTarget, reference: unknown): Promise<void> {
  const res = await fetch(t.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...t.headers },
    body: t.body,
  });
  const text = await res.text();
  const body = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
  if (res.status !== 200 || body.errors?.length)
    throw new Error(`${label} pre-run check failed: HTTP ${res.status} ${text.slice(0, 500)}`);
  if (!isDeepStrictEqual(normalise(body.data), normalise(reference))) {
    throw new Error(`${label} answered different data than the subgraphs hold:\n${text.slice(0, 800)}`);
  }
}

/**
 * Warm-up doubles as the short pre-run: every response is checked, one failure aborts the bench. Around the
 * measured part we read the subgraphs' operation counters (fetches per request) and every process's CPU time.
 */
async function warmThenMeasure(
  label: string,
  load: (seconds: number) => Promise<Sample>,
  opts: BenchOptions,
  env: Env,
  gatewayPid?: number,
): Promise<Measured> {
  say(`- ${label}: warm-up ${opts.warmup}s, then ${opts.duration}s × ${opts.connections} connections`);
  const warm = await load(opts.warmup);
  if (warm.errors)
    throw new Error(`${label}: ${warm.errors} failed requests during warm-up, first: ${warm.firstError}`);
  const opsBefore = await subgraphOperations(env.subgraphUrls);
  const cpu = cpuMeter({
    gateway: gatewayPid ? [gatewayPid] : [],
    subgraphs: [env.subgraphsPid],
    postgres: await postgresBackendPids(env.dbName),
    client: [process.pid],
  });
  const s = stats(await load(opts.duration));
  const used = cpu();
  const fetches = (await subgraphOperations(env.subgraphUrls)) - opsBefore;
  if (s.errors) say(`  ! ${s.errors} failed requests while measuring ${label}`);
  const perRequest = (k: string) => ((used.seconds[k] ?? 0) * 1000) / s.requests;
  return {
    ...s,
    subgraphFetchesPerRequest: fetches / (s.requests + s.errors),
    cpuMsPerRequest: {
      gateway: perRequest('gateway'),
      subgraphs: perRequest('subgraphs'),
      postgres: perRequest('postgres'),
      client: perRequest('client'),
    },
    otherCpuShare: used.otherShare,
  };
}

/** 2nd child: our gateway, started for its measurement and stopped after it. */
async function measureOurs(env: Env, opts: BenchOptions): Promise<Measured> {
  const [node, args] = tsxArgs(fileURLToPath(new URL('../lib/gateway-process.ts', import.meta.url)));
  const gw = await startChild('gateway', node, args, {
    cwd: ROOT,
    env: { BENCH_SUBGRAPH_URLS: JSON.stringify(env.subgraphUrls), NODE_ENV: 'production' },
  });
  await waitForHttp(healthz(gw.ready.url as string), gw);
  const target: HttpTarget = {
    url: gw.ready.url as string,
    headers: { authorization: `Bearer ${env.userToken}` },
    body: env.body,
  };
  await checkOnce('our gateway', target, env.reference);
  const m = await warmThenMeasure(
    'our gateway',
    (s) => autocannonRun(target, opts.connections, s),
    opts,
    env,
    gw.proc.pid,
  );
  await gw.stop();
  return m;
}

/** 3rd child: Hive Gateway on `supergraph`; checked (also that it refuses a forged JWT), measured, stopped. */
async function measureHive(
  label: string,
  dedup: boolean,
  supergraph: string,
  env: Env,
  opts: BenchOptions,
): Promise<Measured> {
  const port = await freePort();
  const hive = await startChild(
    dedup ? 'hive-defaults' : 'hive',
    process.execPath,
    [HIVE_BIN, 'supergraph', supergraph, '--host', '127.0.0.1', '--port', String(port), '-c', HIVE_CONFIG],
    {
      cwd: ROOT,
      env: { BENCH_JWT_SECRET, BENCH_HIVE_DEDUP: dedup ? '1' : '0', NODE_ENV: 'production' },
      readyLine: false,
    },
  );
  await waitForHttp(`http://127.0.0.1:${port}/readiness`, hive);
  const headers = { authorization: `Bearer ${env.userToken}`, 'x-hub-internal': env.internalToken };
  const target: HttpTarget = { url: `http://127.0.0.1:${port}/graphql`, headers, body: env.body };
  await checkOnce(label, target, env.reference);
  // Hive must do its share of auth work: a tampered user JWT has to be refused.
  const forged = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers, authorization: `Bearer ${env.userToken}x` },
    body: env.body,
  });
  if (forged.status < 400 && !(await forged.text()).includes('"errors"'))
    throw new Error(`${label} accepted a forged JWT: its JWT plugin is not active`);
  const m = await warmThenMeasure(label, (s) => autocannonRun(target, opts.connections, s), opts, env, hive.proc.pid);
  await hive.stop();
  return m;
}

function report(results: Record<'gateway' | 'direct' | 'hive', Measured> & { hiveDefaults?: Measured }): void {
  const { gateway: g, direct: d, hive: h, hiveDefaults: hd } = results;
  const cpu = (s: Measured) =>
    (['gateway', 'subgraphs', 'postgres', 'client'] as const).map((k) => s.cpuMsPerRequest[k].toFixed(2)).join(' / ');
  const row = (name: string, s: Measured) => [
    name,
    s.rps.toFixed(1),
    ms(s.p50),
    ms(s.p90),
    ms(s.p99),
    ms(s.mean),
    ms(s.max),
    s.requests,
    s.errors,
    s.subgraphFetchesPerRequest.toFixed(2),
    cpu(s),
    `${(s.otherCpuShare * 100).toFixed(0)}%`,
  ];
  say('');
  say(
    table(
      [
        'target',
        'req/s',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'mean ms',
        'max ms',
        'requests',
        'errors',
        'fetches/req',
        'CPU ms/req: gw / subgraphs / pg / client',
        'other CPU',
      ],
      [
        row('our gateway', g),
        row('direct (no gateway)', d),
        row('Hive Gateway', h),
        ...(hd ? [row('Hive Gateway, defaults *', hd)] : []),
      ],
    ),
  );
  say('');
  say(
    `p50 overhead vs direct: ours ${ms(g.p50 - d.p50)} ms, Hive ${ms(h.p50 - d.p50)} ` +
      `ms${hd ? ` (Hive with defaults ${ms(hd.p50 - d.p50)} ms)` : ''}`,
  );
  say(`gateway CPU per request: ours ${ms(g.cpuMsPerRequest.gateway)} ms, Hive ${ms(h.cpuMsPerRequest.gateway)} ms`);
  say('auth:        ours verifies the user JWT and signs the internal token, both cached per user token. Hive');
  say('             verified the user JWT with its built-in JWT plugin (HS256, every request) and forwarded the');
  say('             x-hub-internal header the bench client pre-signed: it signed nothing itself.');
  say("*            Hive's default in-flight deduplication shares identical concurrent subgraph fetches (all bench");
  say(
    '             clients send the same query and token). The "Hive Gateway" row (RESULT hive_*) has it off, like ' +
      'ours.',
  );
  if (!hd) say("             (the row with Hive's defaults is skipped in --quick)");
  say('fetches/req: subgraph operations served per request. CPU: per process from /proc while measuring;');
  say('             "other CPU" = share of the machine used by unrelated processes meanwhile (noise).');
  say('load:        every target shares 2 CPUs with the load generator and is saturated at this concurrency (CPU,');
  say("             and the subgraphs' 10-connection Postgres pool), so p50 is mostly queueing: p50 overhead reflects");
  say('             CPU per request more than the latency one request gains at low load (try --connections 1).');
  const noisy = Object.entries(results).filter(([, r]) => r.otherCpuShare > NOISY_SHARE);
  if (noisy.length)
    say(
      `! other processes used >${NOISY_SHARE * 100}% of the CPUs while measuring ` +
        `${noisy.map(([k]) => k).join(', ')}: figures are disturbed, rerun on a quiet machine`,
    );
  const failed = Object.entries(results).filter(([, r]) => r.errors);
  if (failed.length) say(`! failed requests while measuring: ${failed.map(([k, r]) => `${k} ${r.errors}`).join(', ')}`);
}

export async function run(opts: BenchOptions): Promise<void> {
  const started = Date.now();
  const plan = planQuery(readSupergraph(), QUERY);
  say(
    `gateway bench: ${opts.duration}s per target after ${opts.warmup}s warm-up, ${opts.connections} connections, ` +
      `${cpus().length} CPUs, node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  );
  say(
    `query: ${QUERY}\nvariables: ${JSON.stringify(VARIABLES)}\n\nquery plan (@apollo/query-planner, as our gateway ` +
      `runs it):\n${plan.pretty}\n`,
  );

  // 1st child: the subgraphs over a fresh, seeded database.
  const dbName = `oee_bench_${process.pid}`;
  onCleanup(() => dropBenchDatabase(dbName));
  say('starting subgraphs (fresh database, demo seed)…');
  const [node, args] = tsxArgs(fileURLToPath(new URL('../lib/subgraphs-process.ts', import.meta.url)));
  const subgraphs = await startChild('subgraphs', node, args, {
    cwd: ROOT,
    env: { BENCH_DB: dbName, NODE_ENV: 'production' },
  });
  const subgraphUrls = subgraphs.ready as Record<string, string>;
  await Promise.all(Object.values(subgraphUrls).map((u) => waitForHttp(healthz(u), subgraphs)));

  // The bench user, and the internal token our gateway would sign for it (sent by direct and Hive clients).
  const userToken = await signUserToken(BENCH_JWT_SECRET, { sub: 'bench', role: 'viewer' });
  const viewer = await createUserTokenVerifier({ secret: BENCH_JWT_SECRET })(userToken);
  const internalToken = await signInternalToken(BENCH_INTERNAL_SECRET, viewer, 3600);

  // The reference answer comes straight from the subgraphs; every target must return the same data.
  const direct = directRequest(plan, subgraphUrls, { 'x-hub-internal': internalToken }, VARIABLES);
  const reference = await direct();
  const machines = (reference as { line?: { machines?: unknown[] } }).line?.machines?.length ?? 0;
  if (!machines)
    throw new Error(`the seeded database has no machines on ${VARIABLES.id}: ${JSON.stringify(reference)}`);
  say(`reference answer: ${machines} machines, ${JSON.stringify(reference).length} bytes`);
  const env: Env = {
    dbName,
    subgraphUrls,
    subgraphsPid: subgraphs.proc.pid!,
    userToken,
    internalToken,
    body: JSON.stringify({ query: QUERY, variables: VARIABLES }),
    reference,
  };

  // Warm the shared subgraphs first, or the first target measured pays for their JIT warm-up.
  say(`warming the subgraphs for ${subgraphWarmup(opts)}s…\n`);
  const warm = await closedLoop(opts.connections, subgraphWarmup(opts), direct);
  if (warm.errors)
    throw new Error(`subgraphs failed ${warm.errors} requests while warming up, first: ${warm.firstError}`);

  const gateway = await measureOurs(env, opts);
  const directResult = await warmThenMeasure(
    `direct (${1 + plan.entities.length} subgraph fetches per request)`,
    (s) => closedLoop(opts.connections, s, direct),
    opts,
    env,
  );
  const tmp = mkdtempSync(`${tmpdir()}/oee-bench-`);
  onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  writeFileSync(`${tmp}/supergraph.graphql`, withSubgraphUrls(readSupergraph(), subgraphUrls));
  const hive = await measureHive('Hive Gateway', false, `${tmp}/supergraph.graphql`, env, opts);
  // Hive's defaults only for context, and not in --quick (which must stay under a minute).
  const hiveDefaults = opts.quick
    ? undefined
    : await measureHive('Hive Gateway (defaults: in-flight dedup on)', true, `${tmp}/supergraph.graphql`, env, opts);
  const results = { gateway, direct: directResult, hive, ...(hiveDefaults ? { hiveDefaults } : {}) };

  report(results);
  const { gateway: g, direct: d, hive: h } = results;
  const file = writeResult('gateway', {
    at: new Date().toISOString(),
    options: opts,
    machine: { cpus: cpus().length, node: process.version, loadAverageAtStart: loadavg()[0] },
    query: QUERY,
    variables: VARIABLES,
    plan: plan.pretty,
    results,
    overheadP50Ms: {
      gateway: g.p50 - d.p50,
      hive: h.p50 - d.p50,
      hiveDefaults: hiveDefaults && hiveDefaults.p50 - d.p50,
    },
    hive: {
      auth:
        'built-in JWT plugin verifies the user JWT (HS256); x-hub-internal is pre-signed by the bench client and ' +
        'forwarded',
      hive: 'deduplicateInflightRequests off (like our gateway)',
      hiveDefaults: 'deduplicateInflightRequests on (Hive default)',
    },
    wallSeconds: (Date.now() - started) / 1000,
  });
  say(`full figures: ${file} (wall time ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  say(
    resultLine('gateway', {
      rps: g.rps.toFixed(1),
      p50_ms: ms(g.p50),
      p99_ms: ms(g.p99),
      direct_rps: d.rps.toFixed(1),
      direct_p50_ms: ms(d.p50),
      direct_p99_ms: ms(d.p99),
      hive_rps: h.rps.toFixed(1),
      hive_p50_ms: ms(h.p50),
      hive_p99_ms: ms(h.p99),
      overhead_p50_ms: ms(g.p50 - d.p50),
    }),
  );
}
