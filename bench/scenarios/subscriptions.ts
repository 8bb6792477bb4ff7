/**
 * Live dashboards through the gateway: N graphql-ws clients (separate processes), each subscribed to one of M
 * machines with fields of three subgraphs, while R readings/s are published to MQTT and flow through ingest →
 * Postgres → live channel → subgraph → gateway → clients. Measured per gateway, one after the other on the same
 * running hub: publish→client latency p50/p99, delivered (distinct (client, reading) pairs of the client's own
 * machine) vs expected, duplicates and wrong-machine frames, gateway CPU and memory. Targets: our
 * gateway, then Hive Gateway on the same supergraph with the same clients and load. See bench/README.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { BenchOptions } from '../run.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { signInternalToken, signUserToken } from '../../lib/auth/tokens.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { startBroker } from '../lib/broker.ts';
import { cpuMeter } from '../lib/cpu.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET, dropBenchDatabase } from '../lib/env.ts';
import { HIVE_BIN, withSubgraphUrls } from '../lib/hive.ts';
import { ms, percentile } from '../lib/load.ts';
import { onCleanup, startChild, tsxArgs, waitForHttp, type Child } from '../lib/proc.ts';
import { rssMiB } from '../lib/proc-stats.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';
import { writeSummary } from '../lib/summary.ts';
import { metricValue } from '../lib/subgraph-metrics.ts';
import { LIVE_PREFIX, listenerPayload, listenerTopic, listenerWill } from '../../lib/telemetry/live.ts';
import { nowMs } from '../lib/mqtt-publisher.ts';
import { setupSubscriptionsDatabase, subsMachineId, subsSensorId, SUBS_TOPIC } from '../lib/subs-setup.ts';

const QUERY =
  'subscription($f: SensorReadingFilter) { sensorReadings(filter: $f) { value ts sensor { id } machine { id name ' +
  'line { id name currentWorkOrder { number product { name } } } } } }';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HIVE_CONFIG = fileURLToPath(new URL('../hive/subscriptions.config.ts', import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL('../lib/ws-clients-process.ts', import.meta.url));
const say = (s = '') => console.log(s);
/** Latencies at the histogram's top (10 s) are "at least 10 s": the client never caught up. */
const lat = (v: number) => (v >= 10_000 ? '>10000' : ms(v));
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

interface Setup {
  clients: number;
  machines: number;
  rate: number;
  duration: number;
  warmup: number;
  /** How long after the window events may still arrive and count. */
  drainMs: number;
  processes: number;
  userToken: string;
  subgraphUrls: Record<string, string>;
  /** The subgraphs' and ingest's processes. */
  hubPids: number[];
  publisher: mqtt.MqttClient;
  /** Per machine, the last timestamp published for its sensor: each reading gets a later one (its identity). */
  lastTs: number[];
  /** Subscribed to the live channel: how much of the latency is ingest's. */
  liveListener: mqtt.MqttClient;
}

interface Target {
  wsUrl: string;
  pid: number;
  stop: () => Promise<void>;
}

interface Measured {
  /** Publish → live channel (ingest alone: MQTT, batch, commit, publish), p50 / p99 ms. */
  liveP50: number;
  liveP99: number;
  clients: number;
  upstreamSubscriptions: number;
  published: number;
  expected: number;
  /** Distinct (client, reading) pairs received, each of the client's own machine and sensor. */
  delivered: number;
  deliveredPct: number;
  /** expected − delivered: (client, reading) pairs that never arrived. */
  missing: number;
  /** Frames of a (client, reading) pair already received. */
  duplicates: number;
  /** Event frames of another machine or sensor than the client's filter asked for. */
  mismatches: number;
  firstMismatch?: string;
  errors: number;
  firstError?: string;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  gatewayCpuPct: number;
  gatewayCpuMsPer1kFrames: number;
  hubCpuPct: number;
  clientsCpuPct: number;
  gatewayRssMiB: number;
  gatewayRssMaxMiB: number;
  connectSeconds: number;
}

/**
 * The reading's timestamp: its publish time, but always after the last one of the same sensor (a reading is
 * identified by (sensor, ts); two in one millisecond would be one row, and one event).
 */
function stamp(s: Setup, m: number): string {
  const ts = Math.max(Math.floor(nowMs()), s.lastTs[m]! + 1);
  s.lastTs[m] = ts;
  return new Date(ts).toISOString();
}

/** Publishes `rate` readings/s round-robin over the machines' sensors, each stamped with its publish time. */
async function publish(s: Setup, seconds: number, counts?: number[]): Promise<number> {
  let sent = 0;
  let k = 0;
  const start = nowMs();
  const end = start + seconds * 1000;
  for (let t = start; t < end; t = nowMs()) {
    const due = Math.min(Math.floor(((t - start) / 1000) * s.rate), Math.floor(seconds * s.rate));
    for (; sent < due; sent++) {
      const m = k++ % s.machines;
      if (counts) counts[m]!++;
      void s.publisher.publishAsync(
        `${SUBS_TOPIC}/${subsSensorId(m)}`,
        JSON.stringify({ value: 20 + (sent % 500) / 10, ts: stamp(s, m) }),
        { qos: 1 },
      );
    }
    await sleep(5);
  }
  return sent;
}

/** One subscription must deliver an event with every subgraph's fields before a target is measured. */
async function checkOnce(label: string, s: Setup, wsUrl: string): Promise<void> {
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${s.userToken}`, token: s.userToken },
    retryAttempts: 0,
  });
  try {
    const got = new Promise<any>((resolve, reject) => {
      client.subscribe(
        { query: QUERY, variables: { f: { machineIds: [subsMachineId(0)] } } },
        { next: resolve, error: reject, complete: () => reject(new Error('completed')) },
      );
    });
    const deadline = Date.now() + 30_000;
    let event: any;
    while (!event && Date.now() < deadline) {
      void s.publisher.publishAsync(`${SUBS_TOPIC}/${subsSensorId(0)}`, JSON.stringify({ value: 1, ts: stamp(s, 0) }), {
        qos: 1,
      });
      event = await Promise.race([got, sleep(500)]);
    }
    const r = event?.data?.sensorReadings;
    if (!r?.machine?.line?.currentWorkOrder?.number || event.errors)
      throw new Error(`${label} pre-run check failed: ${JSON.stringify(event ?? 'no event in 30 s').slice(0, 600)}`);
  } finally {
    await client.dispose();
  }
}

interface ClientProc {
  proc: ChildProcess;
  ask: <T>(msg: object, reply?: string) => Promise<T>;
}

function forkClients(s: Setup, wsUrl: string): Promise<ClientProc[]> {
  const per = Math.ceil(s.clients / s.processes);
  return Promise.all(
    Array.from({ length: s.processes }, (_, p) => {
      const count = Math.max(0, Math.min(per, s.clients - p * per));
      const proc = fork(CLIENT_SCRIPT, [], {
        execArgv: ['--import', 'tsx'],
        env: {
          ...process.env,
          BENCH_WS_URL: wsUrl,
          BENCH_TOKEN: s.userToken,
          BENCH_QUERY: QUERY,
          COUNT: String(count),
          OFFSET: String(p * per),
          MACHINES: String(s.machines),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      onCleanup(() => void proc.kill('SIGKILL'));
      const ask = <T>(msg: object, reply?: string) =>
        new Promise<T>((resolve) => {
          if (reply) proc.once('message', (m) => resolve(m as T));
          proc.send(msg);
          if (!reply) resolve(undefined as T);
        });
      return new Promise<ClientProc>((resolve, reject) => {
        proc.once('message', () => resolve({ proc, ask }));
        proc.once('exit', (code) => reject(new Error(`client process exited (${code}) before it was ready`)));
      });
    }),
  );
}

async function measure(label: string, s: Setup, target: Target): Promise<Measured> {
  say(
    `- ${label}: ${s.clients} clients in ${s.processes} processes over ${s.machines} machines, ${s.rate} ` +
      `readings/s, warm-up ${s.warmup}s, measured ${s.duration}s`,
  );
  await checkOnce(label, s, target.wsUrl);
  const connectStart = Date.now();
  const procs = await forkClients(s, target.wsUrl);
  const status = await Promise.all(
    procs.map((p) => p.ask<{ acked: number; firstError?: string }>({ type: 'status' }, 'status')),
  );
  const acked = status.reduce((a, x) => a + x.acked, 0);
  if (acked < s.clients)
    throw new Error(
      `${label}: only ${acked} of ${s.clients} connections acknowledged; first error: ` +
        `${status.find((x) => x.firstError)?.firstError}`,
    );
  // Subscriptions are established upstream when the iot subgraph's count stops moving.
  let upstream = -1;
  for (let stable = 0, deadline = Date.now() + 120_000; stable < 3 && Date.now() < deadline; ) {
    await sleep(500);
    const n = await metricValue(s.subgraphUrls.iot!, 'hub_live_subscriptions');
    stable = n === upstream ? stable + 1 : 0;
    upstream = n;
  }
  const connectSeconds = (Date.now() - connectStart) / 1000;
  say(`  connected in ${connectSeconds.toFixed(1)} s; ${upstream} upstream subscriptions at the iot subgraph`);
  await publish(s, s.warmup);
  const t0 = Math.ceil(nowMs());
  for (const p of procs) await p.ask({ type: 'reset', t0 });
  const meter = cpuMeter({ gw: [target.pid], hub: s.hubPids, clients: procs.map((p) => p.proc.pid!) });
  const wall0 = nowMs();
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssMiB(target.pid)), 1000);
  const counts = new Array<number>(s.machines).fill(0);
  const live: number[] = [];
  const onLive = (_topic: string, payload: Buffer) => {
    const now = nowMs();
    for (const r of JSON.parse(payload.toString()) as { ts: string }[])
      if (Date.parse(r.ts) >= t0) live.push(now - Date.parse(r.ts));
  };
  s.liveListener.on('message', onLive);
  const published = await publish(s, s.duration, counts);
  s.liveListener.off('message', onLive);
  live.sort((a, b) => a - b);
  const wall = (nowMs() - wall0) / 1000;
  const cpu = meter().seconds as Record<'gw' | 'hub' | 'clients', number>;
  clearInterval(sampler);
  // Let what is in flight arrive (readings stamped inside the window still count).
  await sleep(s.drainMs);
  const reports = await Promise.all(
    procs.map((p) =>
      p.ask<{
        events: number;
        duplicates: number;
        mismatches: number;
        firstMismatch?: string;
        frames: number;
        early: number;
        errors: number;
        firstError?: string;
        pairs: number[];
        loopP99Ms: number;
        loopMaxMs: number;
      }>({ type: 'report' }, 'report'),
    ),
  );
  say(
    `  client event-loop delay p99/max: ` +
      `${reports.map((r) => `${r.loopP99Ms.toFixed(0)}/${r.loopMaxMs.toFixed(0)}`).join(', ')} ms`,
  );
  say(
    `  frames received ${reports.reduce((a, r) => a + r.frames, 0)}, of readings stamped before the window ` +
      `${reports.reduce((a, r) => a + r.early, 0)}`,
  );
  for (const p of procs) await p.ask({ type: 'close' });
  await Promise.all(
    procs.map((p) => new Promise((r) => (p.proc.exitCode !== null ? r(null) : p.proc.once('exit', r)))),
  );
  await target.stop();

  const subscribers = new Array<number>(s.machines).fill(0);
  for (let g = 0; g < s.clients; g++) subscribers[g % s.machines]!++;
  const expected = counts.reduce((a, n, m) => a + n * subscribers[m]!, 0);
  const hist = new Map<number, number>();
  for (const r of reports)
    for (let i = 0; i < r.pairs.length; i += 2) hist.set(r.pairs[i]!, (hist.get(r.pairs[i]!) ?? 0) + r.pairs[i + 1]!);
  // Percentiles from the merged 0.1 ms histogram.
  const sorted = [...hist.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((a, [, n]) => a + n, 0);
  const at = (q: number) => {
    let seen = 0;
    for (const [b, n] of sorted) {
      seen += n;
      if (seen >= q * total) return b / 10;
    }
    return NaN;
  };
  const delivered = reports.reduce((a, r) => a + r.events, 0);
  const duplicates = reports.reduce((a, r) => a + r.duplicates, 0);
  const mismatches = reports.reduce((a, r) => a + r.mismatches, 0);
  // What the gateway sent in the window, for its CPU per frame (copies and strays cost it as much).
  const frames = delivered + duplicates + mismatches;
  return {
    liveP50: percentile(live, 50),
    liveP99: percentile(live, 99),
    clients: s.clients,
    upstreamSubscriptions: upstream,
    published,
    expected,
    delivered,
    deliveredPct: expected ? (100 * delivered) / expected : 0,
    missing: expected - delivered,
    duplicates,
    mismatches,
    firstMismatch: reports.find((r) => r.firstMismatch)?.firstMismatch,
    errors: reports.reduce((a, r) => a + r.errors, 0),
    firstError: reports.find((r) => r.firstError)?.firstError,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted.length ? sorted[sorted.length - 1]![0] / 10 : NaN,
    gatewayCpuPct: (100 * cpu.gw) / wall,
    gatewayCpuMsPer1kFrames: frames ? (cpu.gw * 1e6) / frames : NaN,
    hubCpuPct: (100 * cpu.hub) / wall,
    clientsCpuPct: (100 * cpu.clients) / wall,
    gatewayRssMiB: rss[rss.length - 1] ?? NaN,
    gatewayRssMaxMiB: Math.max(...rss),
    connectSeconds,
  };
}

async function startOurs(s: Setup): Promise<Target> {
  const [node, args] = tsxArgs(fileURLToPath(new URL('../lib/gateway-process.ts', import.meta.url)));
  // BENCH_GATEWAY_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": to profile our gateway under this load.
  args.unshift(...(process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? []));
  const gw = await startChild('subs-gateway', node, args, {
    cwd: ROOT,
    env: { BENCH_SUBGRAPH_URLS: JSON.stringify(s.subgraphUrls), NODE_ENV: 'production', LOG_LEVEL: 'warn' },
  });
  const url = gw.ready.url as string;
  await waitForHttp(url.replace(/\/graphql$/, '/healthz'), gw);
  return { wsUrl: url.replace(/^http/, 'ws'), pid: gw.proc.pid!, stop: gw.stop };
}

async function startHive(s: Setup): Promise<Target> {
  const tmp = mkdtempSync(`${tmpdir()}/oee-bench-`);
  onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  writeFileSync(`${tmp}/supergraph.graphql`, withSubgraphUrls(readSupergraph(), s.subgraphUrls));
  const internal = await signInternalToken(BENCH_INTERNAL_SECRET, { sub: 'bench-hive', role: 'viewer' }, 3600);
  const port = await freePort();
  const hive: Child = await startChild(
    'subs-hive',
    process.execPath,
    [
      HIVE_BIN,
      'supergraph',
      `${tmp}/supergraph.graphql`,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '-c',
      HIVE_CONFIG,
    ],
    {
      cwd: ROOT,
      env: { BENCH_JWT_SECRET, BENCH_INTERNAL_TOKEN: internal, NODE_ENV: 'production' },
      readyLine: false,
    },
  );
  await waitForHttp(`http://127.0.0.1:${port}/readiness`, hive);
  return { wsUrl: `ws://127.0.0.1:${port}/graphql`, pid: hive.proc.pid!, stop: hive.stop };
}

function report(results: Record<string, Measured>): void {
  const row = (name: string, m: Measured) => [
    name,
    m.clients,
    m.upstreamSubscriptions,
    m.published,
    m.expected,
    m.delivered,
    `${m.deliveredPct.toFixed(2)}%`,
    m.duplicates,
    m.mismatches,
    lat(m.p50),
    lat(m.p90),
    lat(m.p99),
    lat(m.max),
    `${ms(m.liveP50)} / ${ms(m.liveP99)}`,
    `${m.gatewayCpuPct.toFixed(0)}%`,
    ms(m.gatewayCpuMsPer1kFrames),
    `${m.gatewayRssMiB.toFixed(0)} / ${m.gatewayRssMaxMiB.toFixed(0)}`,
    `${m.hubCpuPct.toFixed(0)}%`,
    `${m.clientsCpuPct.toFixed(0)}%`,
    m.errors,
  ];
  say('');
  say(
    table(
      [
        'gateway',
        'clients',
        'upstream subs',
        'published',
        'expected',
        'delivered',
        'delivered %',
        'duplicates',
        'wrong machine',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'ingest p50/p99 ms',
        'gateway CPU',
        'gw CPU ms/1k frames',
        'gw RSS MiB end / max',
        'hub CPU',
        'clients CPU',
        'errors',
      ],
      Object.entries(results).map(([k, m]) => row(k, m)),
    ),
  );
  say('');
  say('latency:       reading timestamp (set at publish) → frame parsed by the client, same clock; through MQTT,');
  say(
    '               the ingest pipeline (batch ≤ 20 ms, commit), the live channel, the iot subgraph and the gateway.',
  );
  say(
    'ingest:        publish → the live channel (MQTT, pipeline batch, commit, publish), measured by the bench on the',
  );
  say('               broker in the same window: the part of the latency before any subgraph or gateway.');
  say('delivered:     distinct (client, reading) pairs stamped inside the window, each of the machine and sensor');
  say("               the client's filter names; expected = Σ readings published per machine × its clients.");
  say('duplicates:    further frames of a pair already counted; wrong machine: frames of another machine or sensor');
  say('               than the filter (both never count as delivered).');
  say('upstream subs: subscriptions the iot subgraph serves (ours: one per group of identical subscriptions).');
  say(
    'CPU:           share of one core over the measured window (200% = both cores); hub = subgraphs + ingest (two ' +
      'processes).',
  );
  for (const [k, m] of Object.entries(results)) {
    if (m.firstError) say(`! ${k}: ${m.errors} errors, first: ${m.firstError}`);
    if (m.mismatches)
      say(`! ${k}: ${m.mismatches} frames for another machine than subscribed, first: ${m.firstMismatch}`);
    if (m.duplicates) say(`! ${k}: ${m.duplicates} duplicate frames (a reading delivered twice to one client)`);
  }
}

export async function run(opts: BenchOptions): Promise<void> {
  const started = Date.now();
  const clients = opts.clients ?? (opts.quick ? 1000 : 10_000);
  const machines = opts.machines ?? 500;
  const processes = clients >= 4000 ? 4 : 2;
  say(
    `subscriptions bench: ${clients} clients, ${machines} machines, ${cpus().length} CPUs, node ` +
      `${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  );
  say(`subscription: ${QUERY}\n`);

  const broker = await startBroker('subs-broker');
  const dbName = `oee_bench_subs_${process.pid}`;
  onCleanup(() => dropBenchDatabase(dbName));
  say('setting up the plant (fresh database)…');
  const dbUrl = await setupSubscriptionsDatabase(dbName, machines);
  const [node, args] = tsxArgs(fileURLToPath(new URL('../lib/subs-hub-process.ts', import.meta.url)));
  const env = { BENCH_DB_URL: dbUrl, BENCH_MQTT_URL: broker.url, NODE_ENV: 'production', LOG_LEVEL: 'warn' };
  const hub = await startChild('subs-subgraphs', node, args, { cwd: ROOT, env: { ...env, BENCH_PART: 'subgraphs' } });
  const ingest = await startChild('subs-ingest', node, args, { cwd: ROOT, env: { ...env, BENCH_PART: 'ingest' } });
  const subgraphUrls = hub.ready as Record<string, string>;
  await Promise.all(Object.values(subgraphUrls).map((u) => waitForHttp(u.replace(/\/graphql$/, '/healthz'), hub)));
  const publisher = await mqtt.connectAsync(broker.url, { clientId: `bench-subs-pub-${process.pid}` });
  onCleanup(() => void publisher.end(true));
  // A live-channel consumer like the subgraphs: it announces itself, or the ingest would publish nothing for it.
  const listenerId = `bench-subs-live-${process.pid}`;
  const announcement = listenerTopic(LIVE_PREFIX, listenerId);
  const liveListener = await mqtt.connectAsync(broker.url, {
    clientId: listenerId,
    will: listenerWill(LIVE_PREFIX, listenerId),
  });
  onCleanup(
    () =>
      void liveListener.publishAsync(announcement, '', { qos: 1, retain: true }).finally(() => liveListener.end(true)),
  );
  await liveListener.publishAsync(announcement, listenerPayload(['readings']), { qos: 1, retain: true });
  await liveListener.subscribeAsync(`${LIVE_PREFIX}/readings/+`, { qos: 0 });

  const s: Setup = {
    clients,
    machines,
    rate: opts.rate ?? 1000,
    duration: opts.given.duration ? opts.duration : opts.quick ? 8 : 30,
    warmup: opts.given.warmup ? opts.warmup : opts.quick ? 2 : 3,
    drainMs: opts.quick ? 3000 : 5000,
    processes,
    userToken: await signUserToken(BENCH_JWT_SECRET, { sub: 'bench', role: 'viewer' }),
    subgraphUrls,
    hubPids: [hub.proc.pid!, ingest.proc.pid!],
    publisher,
    lastTs: new Array<number>(machines).fill(0),
    liveListener,
  };
  const ours = await measure('our gateway', s, await startOurs(s));
  // BENCH_SKIP_HIVE=1: ours alone, for quicker iterations while tuning (the RESULT line then has no Hive figures).
  const hive = process.env.BENCH_SKIP_HIVE === '1' ? undefined : await measure('Hive Gateway', s, await startHive(s));
  const results: Record<string, Measured> = hive
    ? { 'our gateway': ours, 'Hive Gateway': hive }
    : { 'our gateway': ours };
  report(results);
  const file = writeResult('subscriptions', {
    at: new Date().toISOString(),
    options: opts,
    machine: { cpus: cpus().length, node: process.version, loadAverageAtStart: loadavg()[0] },
    query: QUERY,
    setup: { clients, machines, rate: s.rate, duration: s.duration, warmup: s.warmup, clientProcesses: processes },
    results,
    wallSeconds: (Date.now() - started) / 1000,
  });
  say(`full figures: ${file} (wall time ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const line = resultLine('subscriptions', {
    subscribers: String(ours.clients),
    p50_ms: lat(ours.p50),
    p99_ms: lat(ours.p99),
    ingest_p99_ms: ms(ours.liveP99),
    delivered_pct: ours.deliveredPct.toFixed(2),
    duplicates: String(ours.duplicates),
    mismatches: String(ours.mismatches),
    gateway_cpu_pct: ours.gatewayCpuPct.toFixed(0),
    gateway_rss_mib: ours.gatewayRssMaxMiB.toFixed(0),
    hive_p50_ms: hive ? lat(hive.p50) : 'skipped',
    hive_p99_ms: hive ? lat(hive.p99) : 'skipped',
    hive_delivered_pct: hive ? hive.deliveredPct.toFixed(2) : 'skipped',
    hive_duplicates: hive ? String(hive.duplicates) : 'skipped',
    hive_mismatches: hive ? String(hive.mismatches) : 'skipped',
    hive_cpu_pct: hive ? hive.gatewayCpuPct.toFixed(0) : 'skipped',
  });
  // A figure as a number, or as printed when it is none ('>10000', 'n/a').
  const num = (x: string) => (Number.isFinite(Number(x)) ? Number(x) : x);
  const figure = (m: Measured) => ({
    expected: m.expected,
    delivered: m.delivered,
    deliveredPct: Number(m.deliveredPct.toFixed(2)),
    missing: m.missing,
    duplicates: m.duplicates,
    mismatches: m.mismatches,
    errors: m.errors,
    p50Ms: num(lat(m.p50)),
    p99Ms: num(lat(m.p99)),
    ingestP50Ms: Number(ms(m.liveP50)),
    ingestP99Ms: Number(ms(m.liveP99)),
    upstreamSubscriptions: m.upstreamSubscriptions,
    gatewayCpuPct: Math.round(m.gatewayCpuPct),
    gatewayRssMaxMiB: Math.round(m.gatewayRssMaxMiB),
  });
  const summary = await writeSummary('subscriptions', opts, [line], {
    clients,
    machines,
    rate: s.rate,
    seconds: s.duration,
    ours: figure(ours),
    hive: hive ? figure(hive) : 'skipped (BENCH_SKIP_HIVE=1)',
  });
  say(`summary (commit it when quoted): ${summary}`);
  say(line);
}
