/**
 * Live MQTT ingest: how fast `hub ingest` (its own process) turns QoS 1 JSON messages into committed
 * telemetry rows, next to what a DBA would script (`mosquitto_sub -q 1 -c | psql \copy` into a jsonb table).
 *   drain:    N messages queued for each consumer's offline persistent session, then time until all are committed.
 *   capacity: publishers kept a bounded number of messages ahead of the consumer; its committed rate.
 *   live:     publishers at a fixed rate (default: 70% of the hub's capacity); committed rate and latency.
 *   soak (--soak minutes, instead of the above): the hub alone at a moderate rate, its RSS every 10 s.
 * Layout, method and caveats: bench/README.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import pg from 'pg';
import { LIVE_PREFIX, listenerPayload, listenerTopic, listenerWill } from '../../lib/telemetry/live.ts';
import type { BenchOptions } from '../run.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { startBroker, type Broker } from '../lib/broker.ts';
import { dropBenchDatabase, PG_ADMIN_URL } from '../lib/env.ts';
import { sensorId, setupIngestDatabase, TOPIC_PREFIX, type BenchPlant } from '../lib/ingest-setup.ts';
import { percentile } from '../lib/load.ts';
import { Publisher, nowMs, type MessageFactory } from '../lib/mqtt-publisher.ts';
import { onCleanup, startChild, tsxArgs, waitForHttp, type Child } from '../lib/proc.ts';
import {
  childPids,
  cpuWindow,
  postgresPids,
  processName,
  rssMiB,
  type CpuMeter,
  type CpuWindow,
} from '../lib/proc-stats.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * The hub whose `bin/hub.ts ingest` is measured: this checkout, or BENCH_HUB_DIR (e.g. an older commit unpacked
 * with `git archive <commit> | tar -x -C dir` and a node_modules symlink) for an A/B comparison on one machine.
 */
const HUB_DIR = process.env.BENCH_HUB_DIR ? `${process.env.BENCH_HUB_DIR.replace(/\/$/, '')}/` : ROOT;
const SENSORS = 1000;
/** Soak publish rate when --rate is not given: well below what the hub sustains on the 2-CPU bench machine. */
const SOAK_RATE = 15_000;
const DEFAULT_PUBLISHERS = 4;
const BASELINE_CLIENT_ID = 'baseline-sub';
/** Latency samples per second of publishing (every k-th message, k = rate / this). */
const SAMPLES_PER_SECOND = 200;
const SAMPLE_POLL_MS = 20;
const NOISY_SHARE = 0.1;
/** Messages the baseline pipe may hold before COPY sees them: mosquitto_sub's block-buffered stdout (4 KB)
 * and libpq's COPY send buffer (8 KB), at ~100 bytes a message; flushed when mosquitto_sub exits. */
const PIPE_BUFFERED = 200;
/**
 * The hub's own default. The brief asked for 65535, which stalled the hub (README) and which the hub has refused
 * since b57c5bc (at most 30,000); --receive-maximum overrides it.
 */
const DEFAULT_RECEIVE_MAXIMUM = 20_000;
/** No commit for this long while messages are outstanding: the hub has stalled. */
const STALL_MS = 10_000;
const iotYml = (receiveMaximum: number) => `# written by bench/scenarios/ingest.ts
mqtt:
  clientId: bench-ingest
  receiveMaximum: ${receiveMaximum}
  topics:
    - pattern: '${TOPIC_PREFIX}/+'
      mapping: { sensorId: { topicSegment: 1 }, values: [{ path: v }], timestamp: { path: t, format: epoch_ms } }
pipeline: { batchMaxRows: 10000, batchMaxDelayMs: 20 }
`;

const say = (s = '') => console.log(s);

/**
 * BENCH_LIVE_LISTENER=1: a live-channel consumer announced on the hub's broker for all three measures, as an open
 * dashboard would be; without one the ingest publishes nothing live (lib/telemetry/live.ts). It counts what
 * arrives without parsing it (its CPU shows under "bench").
 */
async function liveListener(broker: Broker) {
  const id = `bench-ingest-live-${process.pid}`;
  const announcement = listenerTopic(LIVE_PREFIX, id);
  const client = await mqtt.connectAsync(broker.url, { clientId: id, will: listenerWill(LIVE_PREFIX, id) });
  onCleanup(() => void client.end(true));
  const counts = { client, messages: 0, bytes: 0 };
  client.on('message', (_topic, payload) => {
    counts.messages++;
    counts.bytes += payload.length;
  });
  await client.subscribeAsync(`${LIVE_PREFIX}/readings/+`, { qos: 0 });
  await client.publishAsync(announcement, listenerPayload(['readings']), { qos: 1, retain: true });
  return counts;
}
/** Read-only git queries, for the record of what was measured. */
const git = (...args: string[]) => {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f1 = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(1) : 'n/a');

// ---------------------------------------------------------------------------------------------------------------
// Messages: topic bench/S-0001..S-1000 round-robin, ~100-byte JSON, t = base + seq (unique (sensor, t) each).

const TOPICS = Array.from({ length: SENSORS }, (_, i) => Buffer.from(`${TOPIC_PREFIX}/${sensorId(i)}`));
const PAD = 'x'.repeat(34);

/** Messages seq 0.. of one phase; every `sampleEvery`-th one is remembered with its publish time. */
class Messages implements MessageFactory {
  readonly sampleSeq: number[] = [];
  readonly sampleSentMs: number[] = [];
  constructor(
    readonly base: number,
    private readonly sampleEvery = 0,
  ) {}
  topic(seq: number): Buffer {
    return TOPICS[seq % SENSORS]!;
  }
  payload(seq: number, sentMs: number): string {
    if (this.sampleEvery && seq % this.sampleEvery === 0) {
      this.sampleSeq.push(seq);
      this.sampleSentMs.push(sentMs);
    }
    return `{"v":${(seq % 100_000) / 1000},"t":${this.base + seq},"q":100,"p":${Math.round(sentMs)},"pad":"${PAD}"}`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The hub's ingest process.

interface Ingest {
  child: Child;
  pid: number;
  ops: string;
}

interface Ctx {
  opts: BenchOptions;
  receiveMaximum: number;
  dbName: string;
  plant: BenchPlant;
  configDir: string;
  /** The bench's own connection (application_name oee-bench: not counted as the consumer's Postgres CPU). */
  pgc: pg.Client;
  publishers: number;
}

async function startIngest(ctx: Ctx, name: string, broker: Broker): Promise<Ingest> {
  const port = await freePort();
  const [node, args] = tsxArgs(`${HUB_DIR}bin/hub.ts`, 'ingest');
  // BENCH_INGEST_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": to profile the ingest under this load.
  args.unshift(...(process.env.BENCH_INGEST_NODE_ARGS?.split(' ').filter(Boolean) ?? []));
  const child = await startChild(name, node, args, {
    cwd: HUB_DIR,
    readyLine: false,
    env: {
      DATABASE_URL: ctx.plant.url,
      MQTT_URL: broker.url,
      HUB_CONFIG_DIR: ctx.configDir,
      PORT: String(port),
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HUB_ROLE: 'ingest',
    },
  });
  return { child, pid: child.proc.pid!, ops: `http://127.0.0.1:${port}` };
}

interface IngestCounters {
  stored: number;
  deadLetters: number;
}

/** hub_ingest_readings_total{outcome="stored"} and hub_ingest_dead_letters_total from /metrics (undefined: not up yet). */
async function ingestCounters(ops: string): Promise<IngestCounters | undefined> {
  try {
    const text = await (await fetch(`${ops}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    let stored = 0;
    let deadLetters = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('hub_ingest_readings_total{') && line.includes('outcome="stored"'))
        stored += Number(line.slice(line.lastIndexOf(' ') + 1));
      else if (line.startsWith('hub_ingest_dead_letters_total{'))
        deadLetters += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return { stored, deadLetters };
  } catch {
    return undefined;
  }
}

/** The time (ms) of the hub's "mqtt ingest connected" log line (its first CONNACK) and whether a session was present. */
async function connectedAt(ingest: Ingest, since: number): Promise<{ at: number; sessionPresent: boolean }> {
  const until = Date.now() + 10_000;
  for (;;) {
    for (const line of readFileSync(ingest.child.logFile, 'utf8').split('\n')) {
      if (!line.includes('"mqtt ingest connected"')) continue;
      const j = JSON.parse(line) as { time: number; sessionPresent: boolean };
      if (j.time >= since) return { at: j.time, sessionPresent: j.sessionPresent }; // not a previous run's line
    }
    if (Date.now() > until) throw new Error(`no "mqtt ingest connected" line in ${ingest.child.logFile}`);
    await sleep(20);
  }
}

let probeSeq = 0;
/**
 * Starts the ingest and waits until it stores a probe message (so its session and subscription exist): /readyz
 * only says the broker connection is up.
 */
async function startPrimedIngest(ctx: Ctx, name: string, broker: Broker): Promise<Ingest> {
  const ingest = await startIngest(ctx, name, broker);
  await waitForHttp(`${ingest.ops}/readyz`, ingest.child, 60_000);
  const probeBase = Date.now() - 30 * 86_400_000;
  const pub = await Publisher.connect(
    broker.host,
    broker.port,
    1,
    {
      topic: () => TOPICS[0]!,
      payload: () => `{"v":0,"t":${probeBase + probeSeq++},"probe":true}`,
    },
    { clientIdPrefix: `bench-probe-${process.pid}` },
  );
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      await pub.publishAll(1);
      for (let i = 0; i < 20; i++) {
        if (((await ingestCounters(ingest.ops))?.stored ?? 0) >= 1) return ingest;
        await sleep(50);
      }
      if (Date.now() > until)
        throw new Error(`${name} stored no probe message within 30 s; see ${ingest.child.logFile}`);
    }
  } finally {
    await pub.close();
  }
}

async function countHubRows(ctx: Ctx, base: number, n: number): Promise<{ rows: number; distinct: number }> {
  const { rows } = await ctx.pgc.query<{ rows: number; distinct: number }>(
    'select count(*)::int as rows, count(distinct (series_id, ts))::int as distinct from telemetry.readings where ts >= $1 and ts < $2',
    [new Date(base), new Date(base + n)],
  );
  return rows[0]!;
}

async function countBaselineRows(ctx: Ctx, base: number, n: number): Promise<{ rows: number; distinct: number }> {
  const { rows } = await ctx.pgc.query<{ rows: number; distinct: number }>(
    `select count(*)::int as rows, count(distinct doc->>'t')::int as distinct from raw_json
      where (doc->>'t')::bigint >= $1 and (doc->>'t')::bigint < $2`,
    [base, base + n],
  );
  return rows[0]!;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting.

async function hubGroups(ctx: Ctx, broker: Broker, ingest: Ingest): Promise<Record<string, number[]>> {
  const p = await postgresPids(ctx.dbName);
  return {
    consumer: [ingest.pid],
    broker: [broker.pid],
    postgres: p.backends,
    'pg background': p.background,
    bench: [process.pid],
  };
}

async function baselineGroups(ctx: Ctx, broker: Broker, pipeline: Child): Promise<Record<string, number[]>> {
  const p = await postgresPids(ctx.dbName);
  // sh itself does nothing after the fork; its two children are the pipeline.
  return {
    consumer: [pipeline.proc.pid!, ...childPids(pipeline.proc.pid!)],
    broker: [broker.pid],
    postgres: p.backends,
    'pg background': p.background,
    bench: [process.pid],
  };
}

interface CpuShare {
  wallSeconds: number;
  /** CPU seconds per group over the window. */
  seconds: Record<string, number>;
  /** CPU microseconds per message per group. */
  usPerMsg: Record<string, number>;
  /** Share of the machine used by unrelated processes. */
  otherShare: number;
  /** Share of the machine spent in (soft)interrupts (loopback TCP, charged to no process). */
  irqShare: number;
}

function cpuShare(w: CpuWindow, msgs: number): CpuShare {
  const usPerMsg = Object.fromEntries(Object.entries(w.seconds).map(([k, s]) => [k, (s * 1e6) / msgs]));
  return { wallSeconds: w.wallSeconds, seconds: w.seconds, usPerMsg, otherShare: w.otherShare, irqShare: w.irqShare };
}

// ---------------------------------------------------------------------------------------------------------------
// Drain.

interface DrainResult {
  consumer: string;
  messages: number;
  publishSeconds: number;
  /** From the consumer's connection (hub: its CONNACK log line; baseline: spawn) until all rows are committed. */
  seconds: number;
  /** Including process start (the hub's Node/tsx start, cache load). */
  secondsWithStart: number;
  msgsPerSecond: number;
  rows: number;
  distinct: number;
  lost: number;
  duplicated: number;
  /** Hub only: readings the pipeline committed beyond N (redeliveries the primary key absorbed). */
  redelivered?: number;
  deadLetters?: number;
  /** Hub only: no commit for STALL_MS while messages were still outstanding. */
  stalled?: boolean;
  cpu: CpuShare;
}

async function queueBacklog(ctx: Ctx, broker: Broker, msgs: Messages, n: number): Promise<number> {
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });
  const t0 = nowMs();
  await pub.publishAll(n); // every message PUBACKed: the broker has queued it for the offline session
  const s = (nowMs() - t0) / 1000;
  await pub.close();
  return s;
}

async function drainHub(
  ctx: Ctx,
  broker: Broker,
  n: number,
  base: number,
): Promise<{ result: DrainResult; ingest: Ingest }> {
  say(`- hub drain: priming the persistent session (ingest start, probe message stored, SIGTERM)`);
  const prime = await startPrimedIngest(ctx, 'ingest-prime', broker);
  await prime.child.stop();
  const publishSeconds = await queueBacklog(ctx, broker, new Messages(base), n);
  say(
    `  queued ${int(n)} QoS 1 messages in ${publishSeconds.toFixed(1)} s (${int(n / publishSeconds)} msgs/s, all PUBACKed)`,
  );

  const spawnedAt = Date.now();
  const ingest = await startIngest(ctx, 'ingest', broker);
  // CPU is counted from the first answer of the ops port, which opens right after the CONNACK (so the
  // process start, mostly tsx compiling TypeScript, is not in the per-message figures).
  let meter: CpuMeter | undefined;
  // Poll the stored counter (cheap) until it reaches N; the crossing time is interpolated between two polls.
  let prev: { t: number; stored: number } | undefined;
  let doneAt: number | undefined;
  const until = Date.now() + 600_000;
  let lastProgress = Date.now();
  let counters: IngestCounters | undefined;
  while (doneAt === undefined) {
    if (ingest.child.proc.exitCode !== null)
      throw new Error(`ingest exited during the drain; see ${ingest.child.logFile}`);
    const t = Date.now();
    counters = await ingestCounters(ingest.ops);
    if (counters) {
      meter ??= await cpuWindow(() => hubGroups(ctx, broker, ingest));
      if (!prev || counters.stored > prev.stored) lastProgress = t;
      if (counters.stored >= n)
        doneAt =
          prev && counters.stored > prev.stored
            ? prev.t + ((n - prev.stored) / (counters.stored - prev.stored)) * (t - prev.t)
            : t;
      prev = { t, stored: counters.stored };
    }
    if (Date.now() - lastProgress > STALL_MS || Date.now() > until) break;
    if (doneAt === undefined) await sleep(100); // each /metrics scrape costs the ingest ~1 ms (prom-client default metrics)
  }
  const stalled = doneAt === undefined;
  if (!meter) throw new Error(`the ingest's ops port never answered; see ${ingest.child.logFile}`);
  const cpu = await meter.end();
  // The counter counts readings handed to the commit, redeliveries included: the table has the final word.
  let counted = await countHubRows(ctx, base, n);
  while (!stalled && counted.distinct < n && Date.now() - lastProgress < STALL_MS) {
    await sleep(200);
    const c = await ingestCounters(ingest.ops);
    if (c && c.stored > (prev?.stored ?? 0)) {
      lastProgress = Date.now();
      prev = { t: Date.now(), stored: c.stored };
    }
    counted = await countHubRows(ctx, base, n);
    if (counted.distinct >= n) doneAt = Date.now();
  }
  if (doneAt === undefined || counted.distinct < n) doneAt = undefined;
  const conn = await connectedAt(ingest, spawnedAt);
  if (!conn.sessionPresent) say('  ! the ingest connected without a session present: its backlog was gone');
  const final = await ingestCounters(ingest.ops);
  const seconds = doneAt !== undefined ? (doneAt - conn.at) / 1000 : NaN;
  const result: DrainResult = {
    consumer: 'hub ingest',
    messages: n,
    publishSeconds,
    seconds,
    secondsWithStart: doneAt !== undefined ? (doneAt - spawnedAt) / 1000 : NaN,
    msgsPerSecond: n / seconds,
    rows: counted.rows,
    distinct: counted.distinct,
    lost: n - counted.distinct,
    duplicated: counted.rows - counted.distinct,
    redelivered: stalled ? undefined : (final?.stored ?? 0) - n,
    deadLetters: final?.deadLetters,
    stalled,
    cpu: cpuShare(cpu, n),
  };
  if (stalled) {
    say(
      `  ! STALLED: no commit for ${STALL_MS / 1000} s with ${int(counted.distinct)} of ${int(n)} rows stored (receiveMaximum ${ctx.receiveMaximum}; see bench/README.md)`,
    );
    return { result, ingest };
  }
  say(
    `  drained in ${f1(seconds)} s from CONNACK (${f1(result.secondsWithStart)} s from process start): ${int(result.msgsPerSecond)} msgs/s, lost ${result.lost}, duplicated ${result.duplicated}`,
  );
  return { result, ingest };
}

function baselineCommand(broker: Broker, dbName: string, count?: number): string {
  const sub = `mosquitto_sub -h ${broker.host} -p ${broker.port} -q 1 -c -i ${BASELINE_CLIENT_ID} -t '${TOPIC_PREFIX}/#'${count ? ` -C ${count}` : ''}`;
  const u = new URL(PG_ADMIN_URL);
  const psql = `psql -X -q -v ON_ERROR_STOP=1 -h ${u.hostname} -p ${u.port || 5432} -U ${decodeURIComponent(u.username) || 'postgres'} -d ${dbName} -c '\\copy raw_json(doc) from stdin'`;
  return `${sub} | ${psql}`;
}

async function drainBaseline(ctx: Ctx, broker: Broker, n: number, base: number): Promise<DrainResult> {
  say(`- baseline drain: priming the persistent session (mosquitto_sub -c -E)`);
  const prime = spawnSync(
    'mosquitto_sub',
    [
      '-h',
      broker.host,
      '-p',
      String(broker.port),
      '-q',
      '1',
      '-c',
      '-i',
      BASELINE_CLIENT_ID,
      '-t',
      `${TOPIC_PREFIX}/#`,
      '-E',
    ],
    { timeout: 10_000 },
  );
  if (prime.status !== 0) throw new Error(`mosquitto_sub -E failed: ${prime.stderr?.toString()}`);
  const publishSeconds = await queueBacklog(ctx, broker, new Messages(base), n);
  say(
    `  queued ${int(n)} QoS 1 messages in ${publishSeconds.toFixed(1)} s (${int(n / publishSeconds)} msgs/s, all PUBACKed)`,
  );

  const cmd = baselineCommand(broker, ctx.dbName, n);
  say(`  $ ${cmd}`);
  const t0 = nowMs();
  const pipeline = await startChild('baseline-drain', 'sh', ['-c', cmd], { readyLine: false });
  const exited = new Promise<number | null>((r) =>
    pipeline.proc.exitCode !== null ? r(pipeline.proc.exitCode) : pipeline.proc.once('exit', (code) => r(code)),
  );
  // For the CPU accounting: sh's two children and psql's backend, up within a few ms. They are gone when
  // the pipeline ends, so their CPU time is re-read every 20 ms (the last reading counts).
  while (pipeline.proc.exitCode === null && nowMs() - t0 < 5000) {
    if (childPids(pipeline.proc.pid!).length >= 2 && (await postgresPids(ctx.dbName)).byApp.psql?.length) break;
    await sleep(2);
  }
  const meter = await cpuWindow(() => baselineGroups(ctx, broker, pipeline));
  const ticker = setInterval(() => meter.tick(), 20);
  // psql commits when mosquitto_sub exits after N messages (-C): nothing is visible in raw_json before.
  const code = await Promise.race([exited, sleep(600_000).then(() => 'timeout' as const)]);
  const t1 = nowMs();
  clearInterval(ticker);
  if (code !== 0) throw new Error(`baseline pipeline ended with ${code}; see ${pipeline.logFile}`);
  const w = await meter.end();
  const counted = await countBaselineRows(ctx, base, n);
  const seconds = (t1 - t0) / 1000;
  const result: DrainResult = {
    consumer: 'mosquitto_sub | psql',
    messages: n,
    publishSeconds,
    seconds,
    secondsWithStart: seconds,
    msgsPerSecond: n / seconds,
    rows: counted.rows,
    distinct: counted.distinct,
    lost: n - counted.distinct,
    duplicated: counted.rows - counted.distinct,
    cpu: cpuShare(w, n),
  };
  say(
    `  drained and committed in ${f1(seconds)} s: ${int(result.msgsPerSecond)} msgs/s, lost ${result.lost}, duplicated ${result.duplicated}`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Live.

interface LiveResult {
  consumer: string;
  /** Fixed-rate measure: the publish rate. NaN for a capacity measure. */
  offeredRate: number;
  /** Capacity measure: messages the publishers keep beyond what is committed. */
  ahead?: number;
  seconds: number;
  sent: number;
  /** The publisher's worst lag behind its schedule (all PUBACK windows full = the broker pushed back). */
  publisherMaxBehindMs: number;
  /** Rows per second committed (baseline: written by COPY, not yet committed) between warm-up end and publisher end. */
  committedPerSecond: number;
  /** After the last message was published, until all were committed (baseline: written by COPY). */
  tailSeconds: number;
  latencyMethod: string;
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  rows: number;
  distinct: number;
  lost: number;
  duplicated: number;
  redelivered?: number;
  deadLetters?: number;
  /** Hub only: no commit for STALL_MS while messages were outstanding. */
  stalled?: boolean;
  /** Hub only: ingest RSS (MiB) at start, end and max, sampled every second. */
  rss?: { first: number; last: number; max: number };
  cpu: CpuShare;
}

/** Linear interpolation in a (t, n) timeline sorted by t. */
function countAt(timeline: { t: number; n: number }[], t: number): number {
  let i = timeline.findIndex((p) => p.t >= t);
  if (i === -1) return timeline[timeline.length - 1]?.n ?? 0;
  if (i === 0) return timeline[0]!.n;
  const a = timeline[i - 1]!;
  const b = timeline[i]!;
  return a.n + ((b.n - a.n) * (t - a.t)) / (b.t - a.t || 1);
}

function latencyStats(latencies: number[]) {
  const arr = Array.from(Float64Array.from(latencies).sort());
  return {
    samples: arr.length,
    p50: percentile(arr, 50),
    p90: percentile(arr, 90),
    p99: percentile(arr, 99),
    max: arr[arr.length - 1] ?? NaN,
  };
}

/** The figures both live consumers report the same way: rate, tail, latency percentiles, and rows lost or doubled. */
function liveFigures(
  m: {
    published: { seconds: number; sent: number; maxBehindMs: number };
    timeline: { t: number; n: number }[];
    warmAt: number;
    pubEnd: number;
    tailAt: number;
  },
  counted: { rows: number; distinct: number },
  latencies: number[],
  rate: number,
  capacity: Capacity | undefined,
) {
  const committed = countAt(m.timeline, m.pubEnd) - countAt(m.timeline, m.warmAt);
  return {
    committed,
    figures: {
      offeredRate: capacity ? NaN : rate,
      ahead: capacity?.ahead,
      seconds: m.published.seconds,
      sent: m.published.sent,
      publisherMaxBehindMs: m.published.maxBehindMs,
      committedPerSecond: committed / ((m.pubEnd - m.warmAt) / 1000),
      tailSeconds: (m.tailAt - m.pubEnd) / 1000,
      ...latencyStats(latencies),
      rows: counted.rows,
      distinct: counted.distinct,
      lost: m.published.sent - counted.distinct,
      duplicated: counted.rows - counted.distinct,
    },
  };
}

const warmupSeconds = (o: BenchOptions) => (o.given.warmup ? o.warmup : o.quick ? 2 : 5);

/**
 * `capacity`: instead of a fixed rate, the publishers keep `ahead` messages beyond what the consumer has
 * committed (so the consumer sets the pace, and its backlog stays bounded); no latency samples.
 */
interface Capacity {
  ahead: number;
}
const CAPACITY_RATE_CAP = 500_000;
/** The live rate, when not given, as a share of the hub's capacity (at 80% it fell behind). */
const LIVE_SHARE = 0.7;
/** Messages the publishers keep beyond the consumer in the capacity measure. */
const CAPACITY_AHEAD = 50_000;

async function liveHub(
  ctx: Ctx,
  broker: Broker,
  ingest: Ingest,
  rate: number,
  seconds: number,
  base: number,
  capacity?: Capacity,
): Promise<LiveResult> {
  const sampleEvery = capacity ? 0 : Math.max(1, Math.round(rate / SAMPLES_PER_SECOND));
  const msgs = new Messages(base, sampleEvery);
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });
  const c0 = (await ingestCounters(ingest.ops))!;
  const warm = warmupSeconds(ctx.opts);
  say(
    capacity
      ? `- hub capacity: publishers keep ${int(capacity.ahead)} msgs ahead of the commits for ${seconds} s (first ${warm} s not counted)`
      : `- hub live: ${int(rate)} msgs/s for ${seconds} s over ${ctx.publishers} connections (first ${warm} s not counted)`,
  );

  // Sampled latency: every k-th message's (series, ts) is looked up every 20 ms until it is there; the time of
  // the lookup that first sees it bounds its commit from above (so latencies are at most ~20 ms high).
  const seen = new Map<number, number>(); // sample index → seen at (ms)
  let pollMsTotal = 0;
  let polls = 0;
  let running = true;
  const t0 = nowMs();
  const poller = (async () => {
    let next = 0; // samples before this index are all seen
    for (;;) {
      const last = !running; // one more pass after the tail is in, then stop
      const pending: number[] = [];
      for (let i = next; i < msgs.sampleSeq.length && pending.length < 1000; i++) if (!seen.has(i)) pending.push(i);
      if (pending.length) {
        const at = nowMs();
        const { rows } = await ctx.pgc.query<{ i: number }>(
          `select k.i from unnest($1::int[], $2::int[], $3::timestamptz[]) as k(i, s, t)
            where exists (select 1 from telemetry.readings r where r.series_id = k.s and r.ts = k.t and r.ts >= $4 and r.ts <= $5)`,
          [
            pending,
            pending.map((i) => ctx.plant.seriesIds[msgs.sampleSeq[i]! % SENSORS]!),
            pending.map((i) => new Date(base + msgs.sampleSeq[i]!).toISOString()),
            new Date(base),
            new Date(base + msgs.sampleSeq[pending[pending.length - 1]!]!),
          ],
        );
        pollMsTotal += nowMs() - at;
        polls++;
        for (const r of rows) seen.set(r.i, at);
        while (seen.has(next)) next++;
      }
      if (last) break;
      await sleep(SAMPLE_POLL_MS);
    }
  })();
  // The committed-rows timeline from the stored counter, and the ingest's memory.
  const timeline: { t: number; n: number }[] = [{ t: nowMs(), n: 0 }];
  const rss: number[] = [rssMiB(ingest.pid)];
  const counterPoller = setInterval(
    () => {
      const t = nowMs();
      void ingestCounters(ingest.ops).then((c) => c && timeline.push({ t, n: c.stored - c0.stored }));
      rss.push(rssMiB(ingest.pid));
    },
    capacity ? 100 : 250,
  );

  let meter: Promise<CpuMeter> | undefined;
  let warmAt = 0;
  const published = await pub.publishPaced(
    capacity ? CAPACITY_RATE_CAP : rate,
    seconds,
    (_sent, at) => {
      if (!meter && at - t0 >= warm * 1000) {
        warmAt = at;
        meter = cpuWindow(() => hubGroups(ctx, broker, ingest));
      }
    },
    capacity && { max: capacity.ahead, done: () => timeline[timeline.length - 1]!.n },
  );
  const pubEnd = t0 + published.seconds * 1000;
  const cpu = await (await meter!).end();
  await pub.close();

  // Wait for the tail: every message committed (or no commit for STALL_MS: stalled).
  let lastN = -1;
  let lastChange = nowMs();
  let tailAt = NaN;
  let stalled = false;
  for (;;) {
    const c = await ingestCounters(ingest.ops);
    const n = c ? c.stored - c0.stored : 0;
    if (n >= published.sent) {
      tailAt = nowMs();
      break;
    }
    if (n !== lastN) {
      lastN = n;
      lastChange = nowMs();
    } else if (nowMs() - lastChange > STALL_MS) {
      stalled = true;
      break;
    }
    await sleep(20);
  }
  running = false;
  await poller;
  clearInterval(counterPoller);
  timeline.push({ t: nowMs(), n: ((await ingestCounters(ingest.ops))?.stored ?? 0) - c0.stored });
  timeline.sort((a, b) => a.t - b.t);
  const final = await ingestCounters(ingest.ops);
  const counted = await countHubRows(ctx, base, published.sent);

  const latencies: number[] = [];
  for (let i = 0; i < msgs.sampleSeq.length; i++) {
    const at = seen.get(i);
    if (at !== undefined && msgs.sampleSentMs[i]! >= warmAt) latencies.push(at - msgs.sampleSentMs[i]!);
  }
  const { committed, figures } = liveFigures(
    { published, timeline, warmAt, pubEnd, tailAt },
    counted,
    latencies,
    rate,
    capacity,
  );
  const result: LiveResult = {
    consumer: 'hub ingest',
    ...figures,
    latencyMethod: capacity
      ? 'none (capacity)'
      : `every ${sampleEvery}th message looked up by (series_id, ts) every ${SAMPLE_POLL_MS} ms (mean lookup ${f1(pollMsTotal / (polls || 1))} ms); latency = first lookup that sees it - publish time`,
    redelivered: (final?.stored ?? 0) - c0.stored - published.sent,
    deadLetters: (final?.deadLetters ?? 0) - c0.deadLetters,
    rss: { first: rss[0]!, last: rss[rss.length - 1]!, max: Math.max(...rss.filter(Number.isFinite)) },
    stalled,
    cpu: cpuShare(cpu, committed || 1),
  };
  if (stalled)
    say(
      `  ! STALLED: no commit for ${STALL_MS / 1000} s with ${int(counted.distinct)} of ${int(published.sent)} rows stored`,
    );
  if (capacity)
    say(
      `  committed ${int(result.committedPerSecond)} rows/s, tail ${f1(result.tailSeconds)} s, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
  else
    say(
      `  committed ${int(result.committedPerSecond)} rows/s, p50 ${f1(result.p50)} ms, p99 ${f1(result.p99)} ms, tail ${f1(result.tailSeconds)} s, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
  return result;
}

async function liveBaseline(
  ctx: Ctx,
  broker: Broker,
  rate: number,
  seconds: number,
  base: number,
  capacity?: Capacity,
): Promise<LiveResult> {
  const sampleEvery = capacity ? 0 : Math.max(1, Math.round(rate / SAMPLES_PER_SECOND));
  const msgs = new Messages(base, sampleEvery);
  const warm = warmupSeconds(ctx.opts);
  // The session (and its subscription) is the drain's: whatever is published from now on reaches it.
  const cmd = baselineCommand(broker, ctx.dbName);
  say(
    capacity
      ? `- baseline capacity: publishers keep ${int(capacity.ahead)} msgs ahead of what COPY has written for ${seconds} s (first ${warm} s not counted)`
      : `- baseline live: ${int(rate)} msgs/s for ${seconds} s over ${ctx.publishers} connections (first ${warm} s not counted)`,
  );
  say(`  $ ${cmd}`);
  const pipeline = await startChild(capacity ? 'baseline-capacity' : 'baseline-live', 'sh', ['-c', cmd], {
    readyLine: false,
  });
  const exited = new Promise<number | null>((r) => pipeline.proc.once('exit', (code) => r(code)));
  // Wait for psql's COPY to be running (its progress row), i.e. both ends of the pipe are up.
  const progress = async () => {
    const { rows } = await ctx.pgc.query<{ n: string }>(
      'select tuples_processed as n from pg_stat_progress_copy p join pg_database d on d.oid = p.datid where d.datname = $1',
      [ctx.dbName],
    );
    return rows[0] ? Number(rows[0].n) : undefined;
  };
  const until = Date.now() + 10_000;
  while ((await progress()) === undefined) {
    if (Date.now() > until || pipeline.proc.exitCode !== null)
      throw new Error(`the baseline's COPY did not start; see ${pipeline.logFile}`);
    await sleep(20);
  }
  const subPid = childPids(pipeline.proc.pid!).find((p) => processName(p) === 'mosquitto_sub');
  if (!subPid) throw new Error('no mosquitto_sub process under the baseline pipeline');
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });

  // COPY is one transaction: nothing is visible before mosquitto_sub ends. Progress is what COPY has written
  // (pg_stat_progress_copy.tuples_processed, polled every 20 ms); messages arrive in publish order (one
  // subscriber, one broker), so message seq is written when that count passes seq + 1.
  const timeline: { t: number; n: number }[] = [];
  let running = true;
  const poller = (async () => {
    while (running) {
      const t = nowMs();
      const n = await progress();
      if (n !== undefined) timeline.push({ t, n });
      await sleep(SAMPLE_POLL_MS);
    }
  })();
  const t0 = nowMs();
  let meter: Promise<CpuMeter> | undefined;
  let warmAt = 0;
  const published = await pub.publishPaced(
    capacity ? CAPACITY_RATE_CAP : rate,
    seconds,
    (_sent, at) => {
      if (!meter && at - t0 >= warm * 1000) {
        warmAt = at;
        meter = cpuWindow(() => baselineGroups(ctx, broker, pipeline));
      }
    },
    capacity && { max: capacity.ahead, done: () => timeline[timeline.length - 1]?.n ?? 0 },
  );
  const pubEnd = t0 + published.seconds * 1000;
  const cpu = await (await meter!).end();
  await pub.close();
  // The tail: until COPY has written every message, except what the pipe still holds (PIPE_BUFFERED).
  let tailAt = NaN;
  let lastN = -1;
  let lastChange = nowMs();
  for (;;) {
    const last = timeline[timeline.length - 1];
    if (last && last.n !== lastN) {
      lastN = last.n;
      lastChange = last.t;
    }
    const quiet = nowMs() - lastChange;
    if (last && (last.n >= published.sent || (published.sent - last.n <= PIPE_BUFFERED && quiet > 500))) {
      tailAt = lastChange;
      break;
    }
    if (quiet > 30_000) break;
    await sleep(20);
  }
  running = false;
  await poller;
  // SIGINT: mosquitto_sub disconnects, flushes and exits; psql sees EOF and commits.
  process.kill(subPid, 'SIGINT');
  const code = await Promise.race([exited, sleep(120_000).then(() => 'timeout' as const)]);
  if (code !== 0) throw new Error(`baseline pipeline ended with ${code} after SIGINT; see ${pipeline.logFile}`);
  const counted = await countBaselineRows(ctx, base, published.sent);

  const latencies: number[] = [];
  let j = 0;
  for (let i = 0; i < msgs.sampleSeq.length; i++) {
    const seq = msgs.sampleSeq[i]!;
    while (j < timeline.length && timeline[j]!.n < seq + 1) j++;
    if (j === timeline.length) break;
    if (msgs.sampleSentMs[i]! >= warmAt) latencies.push(timeline[j]!.t - msgs.sampleSentMs[i]!);
  }
  const { committed, figures } = liveFigures(
    { published, timeline, warmAt, pubEnd, tailAt },
    counted,
    latencies,
    rate,
    capacity,
  );
  const result: LiveResult = {
    consumer: 'mosquitto_sub | psql',
    ...figures,
    latencyMethod: capacity
      ? 'none (capacity)'
      : `COPY progress (tuples_processed) polled every ${SAMPLE_POLL_MS} ms; latency of every ${sampleEvery}th message = first poll at which COPY had written it - publish time (written, NOT committed: the COPY commits only when mosquitto_sub ends)`,
    cpu: cpuShare(cpu, committed || 1),
  };
  if (capacity)
    say(
      `  written by COPY ${int(result.committedPerSecond)} rows/s (commits when mosquitto_sub ends), tail ${f1(result.tailSeconds)} s, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
  else
    say(
      `  written by COPY ${int(result.committedPerSecond)} rows/s, p50 ${f1(result.p50)} ms, p99 ${f1(result.p99)} ms (uncommitted), tail ${f1(result.tailSeconds)} s, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Soak.

interface SoakResult {
  minutes: number;
  rate: number;
  sent: number;
  committedPerSecond: number;
  lost: number;
  duplicated: number;
  rssMiB: { atSeconds: number; rss: number; committed: number }[];
  first: number;
  last: number;
  max: number;
}

async function soak(ctx: Ctx, minutes: number, rate: number, base: number): Promise<SoakResult> {
  const broker = await startBroker('mosquitto-soak');
  const ingest = await startPrimedIngest(ctx, 'ingest-soak', broker);
  const msgs = new Messages(base);
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });
  const c0 = (await ingestCounters(ingest.ops))!;
  const seconds = minutes * 60;
  say(`- soak: hub alone, ${int(rate)} msgs/s for ${minutes} min; ingest RSS every 10 s`);
  const t0 = nowMs();
  const samples: SoakResult['rssMiB'] = [];
  const sample = async () => {
    const c = await ingestCounters(ingest.ops);
    const s = {
      atSeconds: Math.round((nowMs() - t0) / 1000),
      rss: rssMiB(ingest.pid),
      committed: c ? c.stored - c0.stored : NaN,
    };
    samples.push(s);
    say(`  ${String(s.atSeconds).padStart(5)} s  RSS ${f1(s.rss)} MiB  committed ${int(s.committed)}`);
  };
  await sample();
  const timer = setInterval(() => void sample(), 10_000);
  const published = await pub.publishPaced(rate, seconds);
  clearInterval(timer);
  await pub.close();
  const until = Date.now() + 120_000;
  while (((await ingestCounters(ingest.ops))?.stored ?? 0) - c0.stored < published.sent && Date.now() < until)
    await sleep(100);
  await sample();
  const counted = await countHubRows(ctx, base, published.sent);
  await ingest.child.stop();
  await broker.stop();
  const rss = samples.map((s) => s.rss).filter(Number.isFinite);
  return {
    minutes,
    rate,
    sent: published.sent,
    committedPerSecond: counted.distinct / published.seconds,
    lost: published.sent - counted.distinct,
    duplicated: counted.rows - counted.distinct,
    rssMiB: samples,
    first: rss[0]!,
    last: rss[rss.length - 1]!,
    max: Math.max(...rss),
  };
}

// ---------------------------------------------------------------------------------------------------------------

function cpuCells(c: CpuShare): string[] {
  const pct = (k: string) => `${Math.round((100 * (c.seconds[k] ?? 0)) / c.wallSeconds)}%`;
  const us = (k: string) => (c.usPerMsg[k] ?? 0).toFixed(1);
  return [
    `${us('consumer')} (${pct('consumer')})`,
    `${us('broker')} (${pct('broker')})`,
    `${us('postgres')} (${pct('postgres')})`,
    `${us('pg background')} (${pct('pg background')})`,
    `${us('bench')} (${pct('bench')})`,
    `${Math.round(c.irqShare * 100)}%`,
    `${Math.round(c.otherShare * 100)}%`,
  ];
}

export async function run(opts: BenchOptions): Promise<void> {
  const started = Date.now();
  const n = opts.messages ?? (opts.quick ? 200_000 : 1_000_000);
  const liveSeconds = opts.given.duration ? opts.duration : opts.quick ? 15 : 60;
  const capacitySeconds = opts.quick ? 5 : 20;
  const publishers = opts.given.connections ? opts.connections : DEFAULT_PUBLISHERS;
  const receiveMaximum = opts.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM;
  // Below 65,535: a hub backlog above that makes Mosquitto reuse packet ids, which stalls the hub (README).
  const capacity: Capacity = { ahead: CAPACITY_AHEAD };
  say(
    `ingest bench: ${opts.soak ? `soak ${opts.soak} min` : `drain ${int(n)} msgs, capacity ${capacitySeconds} s, live ${opts.rate ? `${int(opts.rate)} msgs/s` : `${LIVE_SHARE * 100}% of the hub capacity`} for ${liveSeconds} s`}, ` +
      `${SENSORS} sensors, receiveMaximum ${receiveMaximum}, ${HUB_DIR === ROOT ? `commit ${git('rev-parse', '--short', 'HEAD')}` : `hub from ${HUB_DIR}`}, ` +
      `${publishers} publisher connections, ${cpus().length} CPUs, node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  );

  const dbName = `oee_bench_${process.pid}`;
  onCleanup(() => dropBenchDatabase(dbName));
  say(`setting up a fresh database (${SENSORS} sensors through insertSensor)…`);
  // The hub's logger in this process (migrations) at warn; the ingest children log at info (set explicitly).
  process.env.LOG_LEVEL ??= 'warn';
  const plant = await setupIngestDatabase(dbName, SENSORS);
  const configDir = mkdtempSync(join(tmpdir(), 'oee-bench-ingest-'));
  onCleanup(() => rmSync(configDir, { recursive: true, force: true }));
  writeFileSync(join(configDir, 'iot.yml'), iotYml(receiveMaximum));
  const pgc = new pg.Client({ connectionString: plant.url, application_name: 'oee-bench' });
  await pgc.connect();
  onCleanup(() => pgc.end());
  const ctx: Ctx = { opts, receiveMaximum, dbName, plant, configDir, pgc, publishers };
  say(`setup took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

  // Disjoint synthetic time ranges (t = base + seq ms), all in the past (the hub refuses readings > 5 min ahead).
  let cursor = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  const range = (count: number) => (cursor -= count + 60_000);

  if (opts.soak) {
    const soakRate = opts.rate ?? SOAK_RATE;
    const s = await soak(ctx, opts.soak, soakRate, range(Math.ceil(soakRate * opts.soak * 60 * 1.01)));
    say('');
    say(
      table(
        [
          'soak',
          'msgs/s',
          'minutes',
          'sent',
          'committed/s',
          'lost',
          'duplicated',
          'RSS first MiB',
          'RSS last MiB',
          'RSS max MiB',
        ],
        [
          [
            'hub ingest',
            int(s.rate),
            s.minutes,
            int(s.sent),
            int(s.committedPerSecond),
            s.lost,
            s.duplicated,
            f1(s.first),
            f1(s.last),
            f1(s.max),
          ],
        ],
      ),
    );
    const file = writeResult('ingest-soak', {
      at: new Date().toISOString(),
      options: opts,
      commit: git('rev-parse', 'HEAD'),
      soak: s,
      wallSeconds: (Date.now() - started) / 1000,
    });
    say(`full figures: ${file} (wall time ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    say(
      resultLine('ingest', {
        soak_minutes: String(s.minutes),
        soak_msgs_per_s: String(Math.round(s.committedPerSecond)),
        rss_first_mib: f1(s.first),
        rss_last_mib: f1(s.last),
        rss_max_mib: f1(s.max),
        lost: String(s.lost),
        duplicated: String(s.duplicated),
      }),
    );
    return;
  }

  const drainBase = range(n);
  const capHubBase = range(CAPACITY_RATE_CAP * capacitySeconds);
  const capBaseBase = range(CAPACITY_RATE_CAP * capacitySeconds);

  // Hub: drain, capacity, then live, all on the same (by then warm) ingest process and its own broker.
  let hubBroker = await startBroker('mosquitto-hub');
  const listener = process.env.BENCH_LIVE_LISTENER ? await liveListener(hubBroker) : undefined;
  let { result: hubDrain, ingest } = await drainHub(ctx, hubBroker, n, drainBase);
  // A stalled ingest never moves again: the next measure gets a fresh broker and a fresh ingest (new session).
  const recover = async (what: string) => {
    say(`  the stalled ingest is stopped; ${what} runs on a fresh broker and a fresh ingest (new session)`);
    await ingest.child.stop();
    await hubBroker.stop();
    hubBroker = await startBroker(`mosquitto-hub-${what}`);
    ingest = await startPrimedIngest(ctx, `ingest-${what}`, hubBroker);
  };
  if (hubDrain.stalled) await recover('capacity');
  const hubCap = await liveHub(ctx, hubBroker, ingest, NaN, capacitySeconds, capHubBase, capacity);
  if (hubCap.stalled) await recover('live');
  // The live rate: given, or LIVE_SHARE of what the hub just sustained (a rate it should keep with room to spare).
  const rate = opts.rate ?? Math.max(1000, Math.floor((LIVE_SHARE * hubCap.committedPerSecond) / 1000) * 1000);
  const liveBase = range(Math.ceil(rate * liveSeconds * 1.01) + 10_000);
  const hubLive = await liveHub(ctx, hubBroker, ingest, rate, liveSeconds, liveBase);
  await ingest.child.stop();
  if (listener)
    say(`  live listener: ${int(listener.messages)} live-channel messages, ${f1(listener.bytes / 2 ** 20)} MiB`);
  await listener?.client.endAsync(true);
  await hubBroker.stop();

  // Baseline: the same on a fresh broker (else the hub's offline session would queue a copy of everything).
  const baseBroker = await startBroker('mosquitto-baseline');
  const baseDrain = await drainBaseline(ctx, baseBroker, n, drainBase);
  const baseCap = await liveBaseline(ctx, baseBroker, NaN, capacitySeconds, capBaseBase, capacity);
  const baseLive = await liveBaseline(ctx, baseBroker, rate, liveSeconds, liveBase);
  await baseBroker.stop();

  say('');
  const liveRow = (label: string, r: LiveResult, star = '') => [
    label,
    `${r.consumer}${star}`,
    int(r.sent),
    f1(r.seconds),
    int(r.committedPerSecond),
    r.lost,
    r.duplicated,
    f1(r.p50),
    f1(r.p99),
    f1(r.max),
  ];
  say(
    table(
      ['measure', 'consumer', 'msgs', 'seconds', 'msgs/s', 'lost', 'duplicated', 'p50 ms', 'p99 ms', 'max ms'],
      [
        [
          `drain ${int(n)}`,
          hubDrain.consumer,
          int(n),
          hubDrain.stalled ? 'STALLED' : f1(hubDrain.seconds),
          int(hubDrain.msgsPerSecond),
          hubDrain.lost,
          hubDrain.duplicated,
          '',
          '',
          '',
        ],
        [
          '',
          baseDrain.consumer,
          int(n),
          f1(baseDrain.seconds),
          int(baseDrain.msgsPerSecond),
          baseDrain.lost,
          baseDrain.duplicated,
          '',
          '',
          '',
        ],
        liveRow(`capacity (≤${int(capacity.ahead)} ahead)`, hubCap),
        liveRow('', baseCap, ' *'),
        liveRow(`live ${int(rate)}/s`, hubLive),
        liveRow('', baseLive, ' *'),
      ],
    ),
  );
  say('');
  say('where the time goes: CPU µs per message (and % of one core) while measuring');
  say(
    table(
      [
        'measure',
        'consumer',
        'consumer proc',
        'mosquitto',
        'postgres backends',
        'pg wal/bg',
        'bench',
        'softirq',
        'other CPU',
      ],
      [
        ['drain', hubDrain.consumer, ...cpuCells(hubDrain.cpu)],
        ['drain', baseDrain.consumer, ...cpuCells(baseDrain.cpu)],
        ['capacity', hubCap.consumer, ...cpuCells(hubCap.cpu)],
        ['capacity', baseCap.consumer, ...cpuCells(baseCap.cpu)],
        ['live', hubLive.consumer, ...cpuCells(hubLive.cpu)],
        ['live', baseLive.consumer, ...cpuCells(baseLive.cpu)],
      ],
    ),
  );
  const warm = warmupSeconds(opts);
  say('');
  say(
    `drain:    N QoS 1 messages queued for the consumer's offline persistent session (all PUBACKed), then the consumer`,
  );
  say(
    `          starts; time from its connection (hub: its CONNACK log line, ${f1(hubDrain.secondsWithStart - hubDrain.seconds)} s after its process start;`,
  );
  say(`          baseline: spawn) until all N rows are committed (hub: stored counter, then counted in the table).`);
  const stalls = [hubCap.stalled && 'capacity', hubLive.stalled && 'live'].filter(Boolean);
  if (stalls.length) say(`! hub STALLED during ${stalls.join(' and ')} as well (see above).`);
  say(
    `capacity: publishers (${publishers} connections) keep ${int(capacity.ahead)} msgs beyond what the consumer has committed (baseline: written),`,
  );
  say(
    `          for ${capacitySeconds} s; msgs/s over all but the first ${warm} s. The live rate ${opts.rate ? 'was given (--rate)' : `is ${LIVE_SHARE * 100}% of the hub's capacity`}.`,
  );
  say(
    `live:     a fixed rate for ${liveSeconds} s; msgs/s = rows committed per second after the first ${warm} s until the publishers stop`,
  );
  say(
    `          (tail after the last publish: hub ${f1(hubLive.tailSeconds)} s, baseline ${f1(baseLive.tailSeconds)} s; publishers at most ${f1(hubLive.publisherMaxBehindMs)} / ${f1(baseLive.publisherMaxBehindMs)} ms behind).`,
  );
  say(
    `CPU:      per process from /proc while measuring (hub drain: from its ops port's first answer, just after the CONNACK);`,
  );
  say(
    `          softirq and other CPU are shares of the whole machine (${cpus().length} CPUs): loopback TCP is softirq work charged to no process.`,
  );
  say(`latency:  hub: ${hubLive.latencyMethod}.`);
  say(`*         baseline: ${baseLive.latencyMethod}.`);
  if (hubDrain.stalled) {
    say(
      `! hub drain STALLED: ${int(hubDrain.distinct)} of ${int(n)} stored, then no commit for ${STALL_MS / 1000} s ("lost" = not stored by then;`,
    );
    say(
      `  they are stuck unacknowledged in the broker). Seen before b57c5bc with receiveMaximum 65535 (Mosquitto overshoots it`,
    );
    say(`  and reuses the packet ids of unacked messages): see bench/README.md.`);
  }
  say(
    `hub:      redelivered (absorbed by the primary key) drain ${hubDrain.redelivered ?? 'n/a'}, capacity ${hubCap.redelivered}, live ${hubLive.redelivered};`,
  );
  say(
    `          dead letters ${hubDrain.deadLetters} / ${hubCap.deadLetters} / ${hubLive.deadLetters}; ingest RSS during live ${f1(hubLive.rss?.first)} → ${f1(hubLive.rss?.last)} MiB (max ${f1(hubLive.rss?.max)}).`,
  );
  say(
    `target:   hub ≥ 0.5 × baseline: drain ${f1(hubDrain.msgsPerSecond / baseDrain.msgsPerSecond)}×, capacity ${f1(hubCap.committedPerSecond / baseCap.committedPerSecond)}×, live at ${int(rate)}/s ${f1(hubLive.committedPerSecond / baseLive.committedPerSecond)}×`,
  );
  const all = [hubDrain, baseDrain, hubCap, baseCap, hubLive, baseLive];
  if (all.some((r) => r.cpu.otherShare > NOISY_SHARE))
    say(
      `! other processes used >${NOISY_SHARE * 100}% of the CPUs during some measures (see "other CPU"): figures are disturbed, rerun on a quiet machine`,
    );
  if (hubLive.committedPerSecond < 0.97 * rate) say(`! the hub did not keep up with ${int(rate)} msgs/s`);
  if (baseLive.committedPerSecond < 0.97 * rate) say(`! the baseline did not keep up with ${int(rate)} msgs/s`);

  const file = writeResult('ingest', {
    at: new Date().toISOString(),
    options: opts,
    machine: { cpus: cpus().length, node: process.version, loadAverageAtStart: loadavg()[0] },
    commit: git('rev-parse', 'HEAD'),
    hubDir: HUB_DIR === ROOT ? undefined : HUB_DIR,
    uncommittedChanges: git('status', '--porcelain', '--', 'lib', 'bin').split('\n').filter(Boolean),
    sensors: SENSORS,
    publishers,
    iotYml: iotYml(receiveMaximum),
    liveRate: rate,
    drain: { hub: hubDrain, baseline: baseDrain },
    capacity: { hub: hubCap, baseline: baseCap },
    live: { hub: hubLive, baseline: baseLive },
    wallSeconds: (Date.now() - started) / 1000,
  });
  say(`full figures: ${file} (wall time ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const r0 = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : 'n/a');
  say(
    resultLine('ingest', {
      msgs_per_s: r0(hubDrain.msgsPerSecond),
      live_msgs_per_s: r0(hubLive.committedPerSecond),
      p99_ms: f1(hubLive.p99),
      lost: String(hubDrain.lost + hubCap.lost + hubLive.lost),
      duplicated: String(hubDrain.duplicated + hubCap.duplicated + hubLive.duplicated),
      baseline_msgs_per_s: r0(baseDrain.msgsPerSecond),
    }),
  );
}
