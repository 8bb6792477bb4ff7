/**
 * The ingest bench's tables and notes: the measures side by side, where the CPU time goes, how each figure was
 * taken, and the warnings. The RESULT line and bench/results/ingest.json stay with the scenario
 * (bench/scenarios/ingest.ts).
 */
import { cpus } from 'node:os';
import type { BenchOptions } from '../../run.ts';
import { table } from '../report.ts';
import { LIVE_SHARE, type Capacity } from './capacity.ts';
import { f1, int, say, STALL_MS, warmupSeconds, type CpuShare } from './common.ts';
import type { DrainResult } from './drain.ts';
import type { LiveResult } from './live.ts';
import type { RollupCheck } from './rollups.ts';
import type { SoakResult } from './soak.ts';

const NOISY_SHARE = 0.1;

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

/** The soak's one-row table. */
export function printSoakReport(s: SoakResult): void {
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
        'rollup mismatches',
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
          s.rollups.rollupMismatches,
          f1(s.first),
          f1(s.last),
          f1(s.max),
        ],
      ],
    ),
  );
}

/** Every figure of a full run (drain, capacity, live; hub and baseline), as the report needs them. */
export interface IngestFigures {
  opts: BenchOptions;
  /** Drain messages. */
  n: number;
  /** The live rate (given, or LIVE_SHARE of the hub's capacity). */
  rate: number;
  liveSeconds: number;
  capacitySeconds: number;
  publishers: number;
  capacity: Capacity;
  hubDrain: DrainResult;
  baseDrain: DrainResult;
  hubCap: LiveResult;
  baseCap: LiveResult;
  hubLive: LiveResult;
  baseLive: LiveResult;
  /** The hub's rollups and latest values against its raw rows, after its three measures. */
  rollups: RollupCheck;
}

/** The tables and notes of a full run, printed before the scenario writes its JSON and RESULT line. */
export function printReport(f: IngestFigures): void {
  const { opts, n, rate, liveSeconds, capacitySeconds, publishers, capacity } = f;
  const { hubDrain, baseDrain, hubCap, baseCap, hubLive, baseLive, rollups } = f;
  // The hub's table cannot hold a duplicate row (primary key): its column shows "–"; see the rollups line.
  const dup = (r: { duplicated?: number }) => r.duplicated ?? '–';
  say('');
  const liveRow = (label: string, r: LiveResult, star = '') => [
    label,
    `${r.consumer}${star}`,
    int(r.sent),
    f1(r.seconds),
    int(r.committedPerSecond),
    r.lost,
    dup(r),
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
          dup(hubDrain),
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
          dup(baseDrain),
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
  say("          starts. Timed from the broker accepting its connection (the broker's notice: the backlog starts to");
  say('          flow; both have their database connection open by then) until all N rows are committed (hub: stored');
  say('          counter, then counted in the table; baseline: psql exits). From process start instead:');
  say(
    `          hub ${f1(hubDrain.secondsWithStart)} s, baseline ${f1(baseDrain.secondsWithStart)} s ` +
      '(Node starting and tsx compiling the hub are start-up, not draining).',
  );
  const stalls = [hubCap.stalled && 'capacity', hubLive.stalled && 'live'].filter(Boolean);
  if (stalls.length) say(`! hub STALLED during ${stalls.join(' and ')} as well (see above).`);
  say(
    `capacity: publishers (${publishers} connections) keep ` +
      `${int(capacity.ahead)} msgs beyond what the consumer has committed (baseline: written),`,
  );
  say(
    `          for ${capacitySeconds} s; msgs/s over all but the first ${warm} s. The live rate ` +
      `${opts.rate ? 'was given (--rate)' : `is ${LIVE_SHARE * 100}% of the hub's capacity`}.`,
  );
  say(
    `live:     a fixed rate for ${liveSeconds} s; msgs/s = rows committed per second after the first ` +
      `${warm} s until the publishers stop`,
  );
  say(
    `          (tail after the last publish: hub ${f1(hubLive.tailSeconds)} s, baseline ` +
      `${f1(baseLive.tailSeconds)} s; publishers at most ${f1(hubLive.publisherMaxBehindMs)} / ` +
      `${f1(baseLive.publisherMaxBehindMs)} ms behind).`,
  );
  say(
    "CPU:      per process from /proc while measuring (hub drain: from its ops port's first answer, just after the " +
      'CONNACK);',
  );
  say(
    `          softirq and other CPU are shares of the whole machine (${cpus().length} CPUs): loopback TCP is ` +
      `softirq work charged to no process.`,
  );
  say(`latency:  hub: ${hubLive.latencyMethod}.`);
  say(`*         baseline: ${baseLive.latencyMethod}.`);
  if (hubDrain.stalled) {
    say(
      `! hub drain STALLED: ${int(hubDrain.distinct)} of ${int(n)} stored, then no commit for ` +
        `${STALL_MS / 1000} s ("lost" = not stored by then;`,
    );
    say(
      '  they are stuck unacknowledged in the broker). Seen before b57c5bc with receiveMaximum 65535 (Mosquitto ' +
        'overshoots it',
    );
    say(`  and reuses the packet ids of unacked messages): see bench/README.md.`);
  }
  say(
    `rollups:  ${rollups.rollupMismatches} of the hub's ${int(rollups.buckets1m)} minute and ` +
      `${int(rollups.buckets1h)} hour buckets and ${rollups.series} latest values differ from what its raw rows give`,
  );
  say(
    '          (n, sum, min, max per bucket; the newest row per series), checked after its three measures. ' +
      'duplicated:',
  );
  say("          baseline only: raw_json has no key, the hub's readings table a primary key (no row can repeat).");
  say(
    `hub:      redelivered (absorbed by the primary key) drain ${hubDrain.redelivered ?? 'n/a'}, capacity ` +
      `${hubCap.redelivered}, live ${hubLive.redelivered};`,
  );
  say(
    `          dead letters ${hubDrain.deadLetters} / ${hubCap.deadLetters} / ${hubLive.deadLetters}; ingest RSS ` +
      `during live ${f1(hubLive.rss?.first)} → ${f1(hubLive.rss?.last)} MiB (max ${f1(hubLive.rss?.max)}).`,
  );
  say(
    `target:   hub ≥ 0.5 × baseline: drain ${f1(hubDrain.msgsPerSecond / baseDrain.msgsPerSecond)}×, capacity ` +
      `${f1(hubCap.committedPerSecond / baseCap.committedPerSecond)}×, live at ${int(rate)}/s ` +
      `${f1(hubLive.committedPerSecond / baseLive.committedPerSecond)}×`,
  );
  const all = [hubDrain, baseDrain, hubCap, baseCap, hubLive, baseLive];
  if (all.some((r) => r.cpu.otherShare > NOISY_SHARE))
    say(
      `! other processes used >${NOISY_SHARE * 100}% of the CPUs during some measures (see "other CPU"): ` +
        `figures are disturbed, rerun on a quiet machine`,
    );
  if (hubLive.committedPerSecond < 0.97 * rate) say(`! the hub did not keep up with ${int(rate)} msgs/s`);
  if (baseLive.committedPerSecond < 0.97 * rate) say(`! the baseline did not keep up with ${int(rate)} msgs/s`);
}
