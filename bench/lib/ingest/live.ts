/**
 * Live (and capacity) on the hub: publishers at a fixed rate, or kept a bounded number of messages ahead
 * (capacity.ts); the committed rate, the tail, sampled publish → committed latency, RSS and CPU. The figures
 * both consumers share (liveFigures) are here too; the baseline's measure is in baseline.ts.
 */
import type { Broker } from '../broker.ts';
import { percentile } from '../load.ts';
import { Publisher, nowMs } from '../mqtt-publisher.ts';
import { cpuWindow, rssMiB, type CpuMeter } from '../proc-stats.ts';
import { CAPACITY_RATE_CAP, type Capacity } from './capacity.ts';
import { cpuShare, f1, int, say, SENSORS, sleep, STALL_MS, warmupSeconds, type CpuShare, type Ctx } from './common.ts';
import { countHubRows, hubGroups, ingestCounters, type Ingest } from './hub.ts';
import { Messages } from './messages.ts';

/** Latency samples per second of publishing (every k-th message, k = rate / this). */
export const SAMPLES_PER_SECOND = 200;
export const SAMPLE_POLL_MS = 20;

export interface LiveResult {
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
  /** Distinct readings stored (hub: rows, unique by its primary key; baseline: distinct `t`). */
  distinct: number;
  lost: number;
  /** Baseline only: raw_json rows beyond the distinct `t` (it has no key; the hub's table cannot repeat a row). */
  rows?: number;
  duplicated?: number;
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
  const i = timeline.findIndex((p) => p.t >= t);
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

/**
 * The figures both live consumers report the same way: rate, tail, latency percentiles, readings lost, and (when
 * `counted.rows` is given: the baseline's keyless table) rows doubled.
 */
export function liveFigures(
  m: {
    published: { seconds: number; sent: number; maxBehindMs: number };
    timeline: { t: number; n: number }[];
    warmAt: number;
    pubEnd: number;
    tailAt: number;
  },
  counted: { distinct: number; rows?: number },
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
      distinct: counted.distinct,
      lost: m.published.sent - counted.distinct,
      ...(counted.rows === undefined ? {} : { rows: counted.rows, duplicated: counted.rows - counted.distinct }),
    },
  };
}

export async function liveHub(
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
      ? `- hub capacity: publishers keep ${int(capacity.ahead)} msgs ahead of the commits for ${seconds} s (first ` +
          `${warm} s not counted)`
      : `- hub live: ${int(rate)} msgs/s for ${seconds} s over ${ctx.publishers} connections (first ` +
          `${warm} s not counted)`,
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
            where exists (select 1 from telemetry.readings r
              where r.series_id = k.s and r.ts = k.t and r.ts >= $4 and r.ts <= $5)`,
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
      : `every ${sampleEvery}th message looked up by (series_id, ts) every ${SAMPLE_POLL_MS} ms (mean lookup ` +
        `${f1(pollMsTotal / (polls || 1))} ms); latency = first lookup that sees it - publish time`,
    redelivered: (final?.stored ?? 0) - c0.stored - published.sent,
    deadLetters: (final?.deadLetters ?? 0) - c0.deadLetters,
    rss: { first: rss[0]!, last: rss[rss.length - 1]!, max: Math.max(...rss.filter(Number.isFinite)) },
    stalled,
    cpu: cpuShare(cpu, committed || 1),
  };
  if (stalled)
    say(
      `  ! STALLED: no commit for ${STALL_MS / 1000} s with ${int(counted.distinct)} of ` +
        `${int(published.sent)} rows stored`,
    );
  if (capacity)
    say(`  committed ${int(result.committedPerSecond)} rows/s, tail ${f1(result.tailSeconds)} s, lost ${result.lost}`);
  else
    say(
      `  committed ${int(result.committedPerSecond)} rows/s, p50 ${f1(result.p50)} ms, p99 ${f1(result.p99)} ms, ` +
        `tail ${f1(result.tailSeconds)} s, lost ${result.lost}`,
    );
  return result;
}
