/**
 * Gateway overhead: one cross-subgraph query (a line → machines → sensors, latest readings, open alerts),
 * measured one target after another with the same duration, connection count and load generator (closedLoop):
 *   1. our gateway  2. the same fetches straight against the subgraphs  3. Hive Gateway on our supergraph
 *   (like-for-like, then once more with its defaults).
 * Each target twice: every request with one user token (our gateway's per-token caches hit), then every request
 * with a different token from a pool too large for any cache (bench/lib/tokens.ts): auth is paid every time.
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
import { BENCH_JWT_SECRET, dropBenchDatabase, postgresBackendPids } from '../lib/env.ts';
import { onCleanup, startChild, tsxArgs, waitForHttp } from '../lib/proc.ts';
import { planQuery } from '../lib/plan.ts';
import { directRequest } from '../lib/direct.ts';
import { postGraphQL } from '../lib/http.ts';
import { closedLoop, ms, stats, type Sample, type Stats } from '../lib/load.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';
import { writeSummary } from '../lib/summary.ts';
import { poolSizeFor, tokenCacheBound, tokenPool, type TokenPair } from '../lib/tokens.ts';
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

/** `one`: every request carries the same user token; `distinct`: each request the next token of the pool. */
const TOKEN_MODES = ['one', 'distinct'] as const;
type TokenMode = (typeof TOKEN_MODES)[number];
const MODE_LABEL: Record<TokenMode, string> = { one: 'one token', distinct: 'distinct tokens' };

type Measured = Stats & {
  tokens: TokenMode;
  subgraphFetchesPerRequest: number;
  /**
   * CPU ms per request of: the gateway process (0 for direct), the subgraphs, their Postgres backends, the bench
   * client.
   */
  cpuMsPerRequest: Record<'gateway' | 'subgraphs' | 'postgres' | 'client', number>;
  /** Share of the machine's CPU used by unrelated processes while measuring. */
  otherCpuShare: number;
};

/** What every target shares: the running subgraphs, the bench users' tokens and the answer they must all give. */
interface Env {
  dbName: string;
  subgraphUrls: Record<string, string>;
  subgraphsPid: number;
  /** The one-token case's user. */
  one: TokenPair;
  /** The distinct-token case's users, taken round-robin across all targets (never reset between them). */
  pool: TokenPair[];
  nextInPool: number;
  body: string;
  reference: unknown;
}

/** One request to a target, given the token pair it is to carry. */
type Once = (t: TokenPair) => Promise<unknown>;

const tokensFor = (env: Env, mode: TokenMode): (() => TokenPair) =>
  mode === 'one' ? () => env.one : () => env.pool[env.nextInPool++ % env.pool.length]!;

/** Key-order-insensitive comparison of answers; `__typename` only exists in the direct (subgraph) answers. */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([k]) => k !== '__typename');
    return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}

/**
 * One request with each kind of token must answer exactly the reference data (what the subgraphs hold), or we
 * abort. (A non-200 or an `errors` array makes postGraphQL throw.)
 */
async function checkOnce(label: string, once: Once, env: Env): Promise<void> {
  for (const t of [env.one, env.pool[0]!]) {
    const data = await once(t).catch((e: Error) => {
      throw new Error(`${label} pre-run check failed: ${e.message}`);
    });
    if (!isDeepStrictEqual(normalise(data), normalise(env.reference)))
      throw new Error(
        `${label} answered different data than the subgraphs hold:\n${JSON.stringify(data).slice(0, 800)}`,
      );
  }
}

/** A POST of the bench query to a gateway; its data, or a throw. */
function graphqlPost(url: string, env: Env, headers: (t: TokenPair) => Record<string, string>): Once {
  const u = new URL(url);
  return async (t) => (await postGraphQL(u, headers(t), env.body)).data;
}

/**
 * Warm-up doubles as the short pre-run: every response is checked, one failure aborts the bench. Around the
 * measured part we read the subgraphs' operation counters (fetches per request) and every process's CPU time.
 */
async function warmThenMeasure(
  label: string,
  tokens: TokenMode,
  load: (seconds: number) => Promise<Sample>,
  opts: BenchOptions,
  env: Env,
  gatewayPid?: number,
): Promise<Measured> {
  label = `${label}, ${MODE_LABEL[tokens]}`;
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
    tokens,
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

/** Both token cases on one running target, in the same order for every target (one token first). */
async function measureModes(
  label: string,
  once: Once,
  opts: BenchOptions,
  env: Env,
  pid?: number,
  modes: readonly TokenMode[] = TOKEN_MODES,
): Promise<Partial<Record<TokenMode, Measured>>> {
  const out: Partial<Record<TokenMode, Measured>> = {};
  for (const mode of modes) {
    const next = tokensFor(env, mode);
    out[mode] = await warmThenMeasure(
      label,
      mode,
      (s) => closedLoop(opts.connections, s, () => once(next())),
      opts,
      env,
      pid,
    );
  }
  return out;
}

type Both = Record<TokenMode, Measured>;

/** 2nd child: our gateway, started for its measurements and stopped after them. */
async function measureOurs(env: Env, opts: BenchOptions): Promise<Both> {
  const [node, args] = tsxArgs(fileURLToPath(new URL('../lib/gateway-process.ts', import.meta.url)));
  const gw = await startChild('gateway', node, args, {
    cwd: ROOT,
    env: { BENCH_SUBGRAPH_URLS: JSON.stringify(env.subgraphUrls), NODE_ENV: 'production' },
  });
  await waitForHttp(healthz(gw.ready.url as string), gw);
  const once = graphqlPost(gw.ready.url as string, env, (t) => ({ authorization: `Bearer ${t.user}` }));
  await checkOnce('our gateway', once, env);
  const m = await measureModes('our gateway', once, opts, env, gw.proc.pid);
  await gw.stop();
  return m as Both;
}

/** 3rd child: Hive Gateway on `supergraph`; checked (also that it refuses a forged JWT), measured, stopped. */
async function measureHive(
  label: string,
  dedup: boolean,
  supergraph: string,
  env: Env,
  opts: BenchOptions,
  modes: readonly TokenMode[],
): Promise<Partial<Record<TokenMode, Measured>>> {
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
  const url = `http://127.0.0.1:${port}/graphql`;
  const headers = (t: TokenPair) => ({ authorization: `Bearer ${t.user}`, 'x-hub-internal': t.internal });
  const once = graphqlPost(url, env, headers);
  await checkOnce(label, once, env);
  // Hive must do its share of auth work: a tampered user JWT has to be refused.
  const forged = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers(env.one), authorization: `Bearer ${env.one.user}x` },
    body: env.body,
  });
  if (forged.status < 400 && !(await forged.text()).includes('"errors"'))
    throw new Error(`${label} accepted a forged JWT: its JWT plugin is not active`);
  const m = await measureModes(label, once, opts, env, hive.proc.pid, modes);
  await hive.stop();
  return m;
}

type Results = Record<'gateway' | 'direct' | 'hive', Both> & { hiveDefaults?: Measured };

function report(results: Results, poolSize: number, cacheBound: number): void {
  const { gateway: g, direct: d, hive: h, hiveDefaults: hd } = results;
  const cpu = (s: Measured) =>
    (['gateway', 'subgraphs', 'postgres', 'client'] as const).map((k) => s.cpuMsPerRequest[k].toFixed(2)).join(' / ');
  const row = (name: string, s: Measured) => [
    name,
    MODE_LABEL[s.tokens],
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
  const rows = TOKEN_MODES.flatMap((m) => [
    row('our gateway', g[m]),
    row('direct (no gateway)', d[m]),
    row('Hive Gateway', h[m]),
  ]);
  say('');
  say(
    table(
      [
        'target',
        'tokens',
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
      [...rows, ...(hd ? [row('Hive Gateway, defaults *', hd)] : [])],
    ),
  );
  say('');
  for (const m of TOKEN_MODES)
    say(
      `${MODE_LABEL[m].padEnd(16)} p50 overhead vs direct: ours ${ms(g[m].p50 - d[m].p50)} ms, Hive ` +
        `${ms(h[m].p50 - d[m].p50)} ms; gateway CPU per request: ours ${ms(g[m].cpuMsPerRequest.gateway)} ms, ` +
        `Hive ${ms(h[m].cpuMsPerRequest.gateway)} ms`,
    );
  if (hd) say(`Hive with defaults (one token): p50 overhead ${ms(hd.p50 - d.one.p50)} ms`);
  say('tokens:      "one token": every request carries the same user JWT. Ours verifies it and signs the');
  say('             internal token once, then answers from its per-token caches (the subgraphs verify that token');
  say(`             once). "distinct tokens": each request the next of ${poolSize} users, round-robin across all`);
  say(`             targets (2 × the ${cacheBound}-entry bound of the token caches in lib/auth/tokens.ts), so every`);
  say('             request pays the JWT check, the internal signature and its check by the subgraphs. Compare');
  say('             gateways within one kind of row; the distinct-token rows are like for like with Hive.');
  say('auth:        Hive verifies the user JWT with its built-in JWT plugin (HS256, every request) and forwards the');
  say('             x-hub-internal header the bench client pre-signed for the same user: it signs nothing itself.');
  say("*            Hive's default in-flight deduplication shares identical concurrent subgraph fetches (all bench");
  say('             clients send the same query and token). The "Hive Gateway" rows (RESULT hive_*) have it off, like');
  say('             ours. The defaults row is measured with one token only, where identical requests exist.');
  if (!hd) say("             (the row with Hive's defaults is skipped in --quick)");
  say('load:        the same closed loop for every target (bench/lib/load.ts closedLoop): one worker per connection,');
  say('             keep-alive node:http, each response parsed and checked (non-200 or `errors` = an error).');
  say('fetches/req: subgraph operations served per request. CPU: per process from /proc while measuring;');
  say('             "other CPU" = share of the machine used by unrelated processes meanwhile (noise).');
  say('saturation:  every target shares 2 CPUs with the load generator and is saturated at this concurrency (CPU,');
  say("             and the subgraphs' 10-connection Postgres pool), so p50 is mostly queueing: p50 overhead reflects");
  say('             CPU per request more than the latency one request gains at low load (try --connections 1).');
  if (g.distinct.cpuMsPerRequest.gateway <= g.one.cpuMsPerRequest.gateway)
    say(
      '! with distinct tokens our gateway spent no more CPU per request than with one: are its token caches still ' +
        'bounded as bench/lib/tokens.ts assumes?',
    );
  const all: [string, Measured][] = [
    ...TOKEN_MODES.flatMap((m) =>
      (['gateway', 'direct', 'hive'] as const).map((k): [string, Measured] => [
        `${k} (${MODE_LABEL[m]})`,
        results[k][m],
      ]),
    ),
    ...(hd ? [['hiveDefaults', hd] as [string, Measured]] : []),
  ];
  const noisy = all.filter(([, r]) => r.otherCpuShare > NOISY_SHARE);
  if (noisy.length)
    say(
      `! other processes used >${NOISY_SHARE * 100}% of the CPUs while measuring ` +
        `${noisy.map(([k]) => k).join(', ')}: figures are disturbed, rerun on a quiet machine`,
    );
  const failed = all.filter(([, r]) => r.errors);
  if (failed.length) say(`! failed requests while measuring: ${failed.map(([k, r]) => `${k} ${r.errors}`).join(', ')}`);
}

export async function run(opts: BenchOptions): Promise<void> {
  const started = Date.now();
  const plan = planQuery(readSupergraph(), QUERY);
  say(
    `gateway bench: ${opts.duration}s per target and token case after ${opts.warmup}s warm-up, ${opts.connections} ` +
      `connections, ${cpus().length} CPUs, node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  );
  say(
    `query: ${QUERY}\nvariables: ${JSON.stringify(VARIABLES)}\n\nquery plan (@apollo/query-planner, as our gateway ` +
      `runs it):\n${plan.pretty}\n`,
  );

  // The bench users: one for the one-token case, a pool the token caches cannot hold for the distinct case.
  const cacheBound = tokenCacheBound();
  const poolSize = poolSizeFor(cacheBound);
  say(`signing ${poolSize} distinct user and internal tokens (the token caches keep at most ${cacheBound + 1})…`);
  const { one, pool } = await tokenPool(poolSize);

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

  // The reference answer comes straight from the subgraphs; every target must return the same data.
  const direct = directRequest(plan, subgraphUrls, VARIABLES);
  const directOnce: Once = (t) => direct({ 'x-hub-internal': t.internal });
  const reference = await directOnce(one);
  const machines = (reference as { line?: { machines?: unknown[] } }).line?.machines?.length ?? 0;
  if (!machines)
    throw new Error(`the seeded database has no machines on ${VARIABLES.id}: ${JSON.stringify(reference)}`);
  say(`reference answer: ${machines} machines, ${JSON.stringify(reference).length} bytes`);
  const env: Env = {
    dbName,
    subgraphUrls,
    subgraphsPid: subgraphs.proc.pid!,
    one,
    pool,
    nextInPool: 0,
    body: JSON.stringify({ query: QUERY, variables: VARIABLES }),
    reference,
  };

  // Warm the shared subgraphs first, or the first target measured pays for their JIT warm-up.
  say(`warming the subgraphs for ${subgraphWarmup(opts)}s…\n`);
  const warm = await closedLoop(opts.connections, subgraphWarmup(opts), () => directOnce(one));
  if (warm.errors)
    throw new Error(`subgraphs failed ${warm.errors} requests while warming up, first: ${warm.firstError}`);

  const gateway = await measureOurs(env, opts);
  await checkOnce('direct', directOnce, env);
  const directResult = (await measureModes(
    `direct (${1 + plan.entities.length} subgraph fetches per request)`,
    directOnce,
    opts,
    env,
  )) as Both;
  const tmp = mkdtempSync(`${tmpdir()}/oee-bench-`);
  onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  writeFileSync(`${tmp}/supergraph.graphql`, withSubgraphUrls(readSupergraph(), subgraphUrls));
  const hive = (await measureHive('Hive Gateway', false, `${tmp}/supergraph.graphql`, env, opts, TOKEN_MODES)) as Both;
  // Hive's defaults only for context, and not in --quick (which must stay short).
  const hiveDefaults = opts.quick
    ? undefined
    : (
        await measureHive('Hive Gateway (defaults: in-flight dedup on)', true, `${tmp}/supergraph.graphql`, env, opts, [
          'one',
        ])
      ).one;
  const results: Results = { gateway, direct: directResult, hive, ...(hiveDefaults ? { hiveDefaults } : {}) };

  report(results, poolSize, cacheBound);
  const { gateway: g, direct: d, hive: h } = results;
  const overhead = (m: TokenMode) => ({ gateway: g[m].p50 - d[m].p50, hive: h[m].p50 - d[m].p50 });
  const file = writeResult('gateway', {
    at: new Date().toISOString(),
    options: opts,
    machine: { cpus: cpus().length, node: process.version, loadAverageAtStart: loadavg()[0] },
    query: QUERY,
    variables: VARIABLES,
    plan: plan.pretty,
    tokens: {
      one: 'every request carries the same user token (sub bench)',
      distinct: `each request the next of ${poolSize} user tokens, round-robin across all targets`,
      tokenCacheBound: cacheBound,
      poolSize,
    },
    loadGenerator: 'closedLoop (bench/lib/load.ts) over keep-alive node:http, for every target',
    results,
    overheadP50Ms: {
      one: { ...overhead('one'), hiveDefaults: hiveDefaults && hiveDefaults.p50 - d.one.p50 },
      distinct: overhead('distinct'),
    },
    hive: {
      auth:
        'built-in JWT plugin verifies the user JWT (HS256); x-hub-internal is pre-signed by the bench client and ' +
        'forwarded',
      hive: 'deduplicateInflightRequests off (like our gateway)',
      hiveDefaults: 'deduplicateInflightRequests on (Hive default), one token only',
    },
    wallSeconds: (Date.now() - started) / 1000,
  });
  say(`full figures: ${file} (wall time ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const keys = (m: TokenMode, p: string) => ({
    [`${p}rps`]: g[m].rps.toFixed(1),
    [`${p}p50_ms`]: ms(g[m].p50),
    [`${p}p99_ms`]: ms(g[m].p99),
    [`${p}gw_cpu_ms`]: ms(g[m].cpuMsPerRequest.gateway),
    [`${p}direct_rps`]: d[m].rps.toFixed(1),
    [`${p}direct_p50_ms`]: ms(d[m].p50),
    [`${p}direct_p99_ms`]: ms(d[m].p99),
    [`${p}hive_rps`]: h[m].rps.toFixed(1),
    [`${p}hive_p50_ms`]: ms(h[m].p50),
    [`${p}hive_p99_ms`]: ms(h[m].p99),
    [`${p}hive_cpu_ms`]: ms(h[m].cpuMsPerRequest.gateway),
    [`${p}overhead_p50_ms`]: ms(g[m].p50 - d[m].p50),
  });
  const line = resultLine('gateway', {
    ...keys('one', ''),
    ...keys('distinct', 'uncached_'),
    token_pool: String(poolSize),
  });
  const figure = (s: Measured) => ({
    rps: Number(s.rps.toFixed(1)),
    p50Ms: Number(ms(s.p50)),
    p99Ms: Number(ms(s.p99)),
    gatewayCpuMsPerRequest: Number(ms(s.cpuMsPerRequest.gateway)),
    subgraphFetchesPerRequest: Number(s.subgraphFetchesPerRequest.toFixed(2)),
    errors: s.errors,
    otherCpuPct: Math.round(s.otherCpuShare * 100),
  });
  const summary = await writeSummary('gateway', opts, [line], {
    connections: opts.connections,
    seconds: opts.duration,
    warmupSeconds: opts.warmup,
    tokenPool: poolSize,
    oneToken: { ours: figure(g.one), direct: figure(d.one), hive: figure(h.one) },
    distinctTokens: { ours: figure(g.distinct), direct: figure(d.distinct), hive: figure(h.distinct) },
    hiveDefaultsOneToken: hiveDefaults && figure(hiveDefaults),
  });
  say(`summary (commit it when quoted): ${summary}`);
  say(line);
}
