/**
 * The baseline a DBA would script, `mosquitto_sub -q 1 -c | psql \copy` into raw_json(doc jsonb): its drain and
 * its live / capacity measure, the same measures as the hub's (drain.ts, live.ts) on its own broker.
 */
import { spawnSync } from 'node:child_process';
import type { Broker } from '../broker.ts';
import { PG_ADMIN_URL } from '../env.ts';
import { TOPIC_PREFIX } from '../ingest-setup.ts';
import { Publisher, nowMs } from '../mqtt-publisher.ts';
import { startChild, type Child } from '../proc.ts';
import { childPids, cpuWindow, postgresPids, processName, type CpuMeter } from '../proc-stats.ts';
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

function baselineCommand(broker: Broker, dbName: string, count?: number): string {
  const sub =
    `mosquitto_sub -h ${broker.host} -p ${broker.port} -q 1 -c -i ${BASELINE_CLIENT_ID} -t ` +
    `'${TOPIC_PREFIX}/#'${count ? ` -C ${count}` : ''}`;
  const u = new URL(PG_ADMIN_URL);
  const psql =
    `psql -X -q -v ON_ERROR_STOP=1 -h ${u.hostname} -p ${u.port || 5432} -U ` +
    `${decodeURIComponent(u.username) || 'postgres'} -d ${dbName} -c '\\copy raw_json(doc) from stdin'`;
  return `${sub} | ${psql}`;
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
    `  drained and committed in ${f1(seconds)} s: ${int(result.msgsPerSecond)} msgs/s, lost ${result.lost}, ` +
      `duplicated ${result.duplicated}`,
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
  const cmd = baselineCommand(broker, ctx.dbName);
  say(
    capacity
      ? `- baseline capacity: publishers keep ${int(capacity.ahead)} msgs ahead of what COPY has written for ` +
          `${seconds} s (first ${warm} s not counted)`
      : `- baseline live: ${int(rate)} msgs/s for ${seconds} s over ${ctx.publishers} connections (first ` +
          `${warm} s not counted)`,
  );
  say(`  $ ${cmd}`);
  const pipeline = await startChild(capacity ? 'baseline-capacity' : 'baseline-live', 'sh', ['-c', cmd], {
    readyLine: false,
  });
  const exited = new Promise<number | null>((r) => pipeline.proc.once('exit', (code) => r(code)));
  // Wait for psql's COPY to be running (its progress row), i.e. both ends of the pipe are up.
  const progress = async () => {
    const { rows } = await ctx.pgc.query<{ n: string }>(
      'select tuples_processed as n from pg_stat_progress_copy p join pg_database d on d.oid = p.datid where ' +
        'd.datname = $1',
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
