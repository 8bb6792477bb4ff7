/**
 * Drain: N messages queued for the hub's offline persistent session, then the time from the broker accepting its
 * connection until all N are committed. The baseline's drain (baseline.ts) is timed from the same event.
 *
 * Why that event: it is when the broker starts sending the backlog, and both consumers are ready for it by then
 * (the hub opens its database pool before it connects to MQTT; the baseline's psql is in its COPY before
 * mosquitto_sub starts). It is seen by one observer on one clock for both (the bench reading the broker's
 * "New client connected" notice, broker.ts). Timing from process spawn instead would charge the hub for Node
 * starting and tsx compiling TypeScript (seconds; the baseline's C programs start in milliseconds), which is
 * start-up, not draining: both are reported as well, as `secondsWithStart`.
 */
import type { Broker } from '../broker.ts';
import { Publisher, nowMs } from '../mqtt-publisher.ts';
import { cpuWindow, type CpuMeter } from '../proc-stats.ts';
import { cpuShare, f1, HUB_CLIENT_ID, int, say, sleep, STALL_MS, type CpuShare, type Ctx } from './common.ts';
import {
  connectedAt,
  countHubRows,
  hubGroups,
  ingestCounters,
  startIngest,
  startPrimedIngest,
  type Ingest,
  type IngestCounters,
} from './hub.ts';
import { Messages } from './messages.ts';

export interface DrainResult {
  consumer: string;
  messages: number;
  publishSeconds: number;
  /** From the broker accepting the consumer's connection until all rows are committed. */
  seconds: number;
  /** From spawning the consumer (hub: Node start, tsx compile, caches; baseline: psql's start) until committed. */
  secondsWithStart: number;
  msgsPerSecond: number;
  /** Distinct readings stored (hub: rows, unique by its primary key; baseline: distinct `t`). */
  distinct: number;
  lost: number;
  /** Baseline only: raw_json rows beyond the distinct `t` (it has no key; the hub's table cannot repeat a row). */
  rows?: number;
  duplicated?: number;
  /** Hub only: its own CONNACK log line, this long after the broker's notice (a sanity check of the start). */
  connackLagMs?: number;
  /** Hub only: readings the pipeline committed beyond N (redeliveries the primary key absorbed). */
  redelivered?: number;
  deadLetters?: number;
  /** Hub only: no commit for STALL_MS while messages were still outstanding. */
  stalled?: boolean;
  cpu: CpuShare;
}

export async function queueBacklog(ctx: Ctx, broker: Broker, msgs: Messages, n: number): Promise<number> {
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });
  const t0 = nowMs();
  await pub.publishAll(n); // every message PUBACKed: the broker has queued it for the offline session
  const s = (nowMs() - t0) / 1000;
  await pub.close();
  return s;
}

export async function drainHub(
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
    `  queued ${int(n)} QoS 1 messages in ${publishSeconds.toFixed(1)} s ` +
      `(${int(n / publishSeconds)} msgs/s, all PUBACKed)`,
  );

  const spawnedAt = nowMs();
  const spawnedWall = Date.now();
  const ingest = await startIngest(ctx, 'ingest', broker);
  // CPU is counted from the first answer of the ops port, which opens right after the CONNACK (so the
  // process start, mostly tsx compiling TypeScript, is not in the per-message figures).
  let meter: CpuMeter | undefined;
  // Poll the stored counter (cheap) until it reaches N; the crossing time is interpolated between two polls.
  let prev: { t: number; stored: number } | undefined;
  let doneAt: number | undefined;
  const until = nowMs() + 600_000;
  let lastProgress = nowMs();
  let counters: IngestCounters | undefined;
  while (doneAt === undefined) {
    if (ingest.child.proc.exitCode !== null)
      throw new Error(`ingest exited during the drain; see ${ingest.child.logFile}`);
    const t = nowMs();
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
    if (nowMs() - lastProgress > STALL_MS || nowMs() > until) break;
    // each /metrics scrape costs the ingest ~1 ms (prom-client default metrics)
    if (doneAt === undefined) await sleep(100);
  }
  const stalled = doneAt === undefined;
  if (!meter) throw new Error(`the ingest's ops port never answered; see ${ingest.child.logFile}`);
  const cpu = await meter.end();
  // The counter counts readings handed to the commit, redeliveries included: the table has the final word.
  let counted = await countHubRows(ctx, base, n);
  while (!stalled && counted.distinct < n && nowMs() - lastProgress < STALL_MS) {
    await sleep(200);
    const c = await ingestCounters(ingest.ops);
    if (c && c.stored > (prev?.stored ?? 0)) {
      lastProgress = nowMs();
      prev = { t: nowMs(), stored: c.stored };
    }
    counted = await countHubRows(ctx, base, n);
    if (counted.distinct >= n) doneAt = nowMs();
  }
  if (doneAt === undefined || counted.distinct < n) doneAt = undefined;
  const t0 = await broker.connectedAt(HUB_CLIENT_ID, spawnedAt);
  const conn = await connectedAt(ingest, spawnedWall);
  if (!conn.sessionPresent) say('  ! the ingest connected without a session present: its backlog was gone');
  const final = await ingestCounters(ingest.ops);
  const seconds = doneAt !== undefined ? (doneAt - t0) / 1000 : NaN;
  const result: DrainResult = {
    consumer: 'hub ingest',
    messages: n,
    publishSeconds,
    seconds,
    secondsWithStart: doneAt !== undefined ? (doneAt - spawnedAt) / 1000 : NaN,
    msgsPerSecond: n / seconds,
    distinct: counted.distinct,
    lost: n - counted.distinct,
    // The hub logs on the wall clock (Date.now), the bench times on nowMs: their offset taken at the spawn.
    connackLagMs: conn.at - (t0 + spawnedWall - spawnedAt),
    redelivered: stalled ? undefined : (final?.stored ?? 0) - n,
    deadLetters: final?.deadLetters,
    stalled,
    cpu: cpuShare(cpu, n),
  };
  if (stalled) {
    say(
      `  ! STALLED: no commit for ${STALL_MS / 1000} s with ${int(counted.distinct)} of ${int(n)} rows stored ` +
        `(receiveMaximum ${ctx.receiveMaximum}; see bench/README.md)`,
    );
    return { result, ingest };
  }
  say(
    `  drained in ${f1(seconds)} s from its connection (${f1(result.secondsWithStart)} s from process start; its ` +
      `CONNACK logged ${f1(result.connackLagMs)} ms after the broker's notice): ${int(result.msgsPerSecond)} ` +
      `msgs/s, lost ${result.lost}`,
  );
  return { result, ingest };
}
