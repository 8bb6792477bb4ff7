/**
 * The baseline a DBA would script, `mosquitto_sub -q 1 -c | psql \copy` into raw_json(doc jsonb): its drain and
 * its live / capacity measure, the same measures as the hub's (drain.ts, live.ts) on its own broker. The pipe is
 * started end first (psql until its COPY runs, then mosquitto_sub writing into psql's stdin), so that, like the
 * hub, the baseline has its database connection ready when it connects to the broker.
 */
import { spawnSync } from 'node:child_process';
import type { Broker } from '../broker.ts';
import { PG_ADMIN_URL } from '../env.ts';
import { TOPIC_PREFIX } from '../ingest-setup.ts';
import { Publisher, nowMs } from '../mqtt-publisher.ts';
import { startChild, type Child } from '../proc.ts';
import { cpuWindow, postgresPids, type CpuMeter } from '../proc-stats.ts';
import { CAPACITY_RATE_CAP, type Capacity } from './capacity.ts';
import { cpuShare, f1, int, say, sleep, warmupSeconds, type Ctx } from './common.ts';
import { queueBacklog, type DrainResult } from './drain.ts';
import { liveFigures, SAMPLE_POLL_MS, SAMPLES_PER_SECOND, type LiveResult } from './live.ts';
import { Messages } from './messages.ts';

const BASELINE_CLIENT_ID = 'baseline-sub';
/** Messages the baseline pipe may hold before COPY sees them: mosquitto_sub's block-buffered stdout (4 KB)
 * and libpq's COPY send buffer (8 KB), at ~100 bytes a message; flushed when mosquitto_sub exits. */
const PIPE_BUFFERED = 200;

async function countBaselineRows(ctx: Ctx, base: number, n: number): Promise<{ rows: number; distinct: number }> {
  const { rows } = await ctx.pgc.query<{ rows: number; distinct: number }>(
    `select count(*)::int as rows, count(distinct doc->>'t')::int as distinct from raw_json
      where (doc->>'t')::bigint >= $1 and (doc->>'t')::bigint < $2`,
    [base, base + n],
  );
  return rows[0]!;
}

/** The running pipe: both ends, and their exits (mosquitto_sub's first, then psql's commit). */
interface Pipeline {
  psql: Child;
  sub: Child;
  subExit: Promise<number | null>;
  psqlExit: Promise<number | null>;
  /** nowMs just before mosquitto_sub was started (its broker connection comes after). */
  subStartedAt: number;
}

const exitOf = (c: Child) =>
  new Promise<number | null>((r) =>
    c.proc.exitCode !== null ? r(c.proc.exitCode) : c.proc.once('exit', (code) => r(code)),
  );

async function baselineGroups(ctx: Ctx, broker: Broker, p: Pipeline): Promise<Record<string, number[]>> {
  const pg = await postgresPids(ctx.dbName);
  return {
    consumer: [p.sub.proc.pid!, p.psql.proc.pid!],
    broker: [broker.pid],
    postgres: pg.backends,
    'pg background': pg.background,
    bench: [process.pid],
  };
}

function subArgs(broker: Broker, count?: number): string[] {
  const args = ['-h', broker.host, '-p', String(broker.port), '-q', '1', '-c', '-i', BASELINE_CLIENT_ID];
  return [...args, '-t', `${TOPIC_PREFIX}/#`, ...(count ? ['-C', String(count)] : [])];
}

function psqlArgs(dbName: string): string[] {
  const u = new URL(PG_ADMIN_URL);
  const user = decodeURIComponent(u.username) || 'postgres';
  return [
    '-X',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    u.hostname,
    '-p',
    u.port || '5432',
    '-U',
    user,
    '-d',
    dbName,
  ].concat(['-c', '\\copy raw_json(doc) from stdin']);
}

/** The pipe as a DBA would type it (what the bench runs, in its own start order). */
function baselineCommand(broker: Broker, dbName: string, count?: number): string {
  const quote = (a: string) => (/^[\w./:=@-]+$/.test(a) ? a : `'${a}'`);
  return `mosquitto_sub ${subArgs(broker, count).map(quote).join(' ')} | psql ${psqlArgs(dbName).map(quote).join(' ')}`;
}

/** COPY's rows written so far (pg_stat_progress_copy), undefined while no COPY runs in the bench database. */
async function copyProgress(ctx: Ctx): Promise<number | undefined> {
  const { rows } = await ctx.pgc.query<{ n: string }>(
    'select tuples_processed as n from pg_stat_progress_copy p join pg_database d on d.oid = p.datid where ' +
      'd.datname = $1',
    [ctx.dbName],
  );
  return rows[0] ? Number(rows[0].n) : undefined;
}

/**
 * psql first, until its COPY runs; then mosquitto_sub with psql's stdin as its stdout (the bench's own copy of
 * that pipe end is closed, so psql sees EOF, and commits, when mosquitto_sub exits).
 */
async function startPipeline(ctx: Ctx, broker: Broker, name: string, count?: number): Promise<Pipeline> {
  say(`  $ ${baselineCommand(broker, ctx.dbName, count)}`);
  const psql = await startChild(`${name}-psql`, 'psql', psqlArgs(ctx.dbName), { readyLine: false, stdin: 'pipe' });
  const psqlExit = exitOf(psql);
  const until = Date.now() + 10_000;
  while ((await copyProgress(ctx)) === undefined) {
    if (Date.now() > until || psql.proc.exitCode !== null)
      throw new Error(`the baseline's COPY did not start; see ${psql.logFile}`);
    await sleep(5);
  }
  const subStartedAt = nowMs();
  const sub = await startChild(`${name}-sub`, 'mosquitto_sub', subArgs(broker, count), {
    readyLine: false,
    stdout: psql.proc.stdin!,
  });
  psql.proc.stdin!.destroy();
  return { psql, sub, subExit: exitOf(sub), psqlExit, subStartedAt };
}

export async function drainBaseline(ctx: Ctx, broker: Broker, n: number, base: number): Promise<DrainResult> {
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
    `  queued ${int(n)} QoS 1 messages in ${publishSeconds.toFixed(1)} s ` +
      `(${int(n / publishSeconds)} msgs/s, all PUBACKed)`,
  );

  const spawnedAt = nowMs();
  const pipeline = await startPipeline(ctx, broker, 'baseline-drain', n);
  // Timed like the hub: from the broker accepting the subscriber's connection (its backlog starts to flow).
  const t0 = await broker.connectedAt(BASELINE_CLIENT_ID, pipeline.subStartedAt);
  // Both ends and psql's backend are up. They are gone when the pipeline ends, so their CPU time is re-read every
  // 20 ms (the last reading counts).
  const meter = await cpuWindow(() => baselineGroups(ctx, broker, pipeline));
  const ticker = setInterval(() => meter.tick(), 20);
  // psql commits when mosquitto_sub exits after N messages (-C): nothing is visible in raw_json before.
  const code = await Promise.race([pipeline.psqlExit, sleep(600_000).then(() => 'timeout' as const)]);
  const t1 = nowMs();
  clearInterval(ticker);
  const subCode = await pipeline.subExit;
  if (code !== 0 || subCode !== 0)
    throw new Error(
      `baseline pipeline ended with psql ${code}, mosquitto_sub ${subCode}; see ${pipeline.psql.logFile}, ` +
        `${pipeline.sub.logFile}`,
    );
  const w = await meter.end();
  const counted = await countBaselineRows(ctx, base, n);
  const seconds = (t1 - t0) / 1000;
  const result: DrainResult = {
    consumer: 'mosquitto_sub | psql',
    messages: n,
    publishSeconds,
    seconds,
    secondsWithStart: (t1 - spawnedAt) / 1000,
    msgsPerSecond: n / seconds,
    rows: counted.rows,
    distinct: counted.distinct,
    lost: n - counted.distinct,
    duplicated: counted.rows - counted.distinct,
    cpu: cpuShare(w, n),
  };
  say(
    `  drained and committed in ${f1(seconds)} s from its connection (${f1(result.secondsWithStart)} s from ` +
      `psql's start): ${int(result.msgsPerSecond)} msgs/s, lost ${result.lost}, duplicated ${result.duplicated}`,
  );
  return result;
}

export async function liveBaseline(
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
  say(
    capacity
      ? `- baseline capacity: publishers keep ${int(capacity.ahead)} msgs ahead of what COPY has written for ` +
          `${seconds} s (first ${warm} s not counted)`
      : `- baseline live: ${int(rate)} msgs/s for ${seconds} s over ${ctx.publishers} connections (first ` +
          `${warm} s not counted)`,
  );
  const pipeline = await startPipeline(ctx, broker, capacity ? 'baseline-capacity' : 'baseline-live');
  await broker.connectedAt(BASELINE_CLIENT_ID, pipeline.subStartedAt);
  const pub = await Publisher.connect(broker.host, broker.port, ctx.publishers, msgs, { window: 5000 });

  // COPY is one transaction: nothing is visible before mosquitto_sub ends. Progress is what COPY has written
  // (pg_stat_progress_copy.tuples_processed, polled every 20 ms); messages arrive in publish order (one
  // subscriber, one broker), so message seq is written when that count passes seq + 1.
  const timeline: { t: number; n: number }[] = [];
  let running = true;
  const poller = (async () => {
    while (running) {
      const t = nowMs();
      const n = await copyProgress(ctx);
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
  pipeline.sub.proc.kill('SIGINT');
  const code = await Promise.race([pipeline.psqlExit, sleep(120_000).then(() => 'timeout' as const)]);
  if (code !== 0) throw new Error(`baseline pipeline ended with ${code} after SIGINT; see ${pipeline.psql.logFile}`);
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
      : `COPY progress (tuples_processed) polled every ${SAMPLE_POLL_MS} ms; latency of every ${sampleEvery}th ` +
        `message = first poll at which COPY had written it - publish time (written, NOT committed: the COPY ` +
        `commits only when mosquitto_sub ends)`,
    cpu: cpuShare(cpu, committed || 1),
  };
  if (capacity)
    say(
      `  written by COPY ${int(result.committedPerSecond)} rows/s (commits when mosquitto_sub ends), tail ` +
        `${f1(result.tailSeconds)} s, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
  else
    say(
      `  written by COPY ${int(result.committedPerSecond)} rows/s, p50 ${f1(result.p50)} ms, p99 ${f1(result.p99)} ` +
        `ms (uncommitted), tail ${f1(result.tailSeconds)} s, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
  return result;
}
