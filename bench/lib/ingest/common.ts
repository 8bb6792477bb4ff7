/**
 * What every phase of the ingest bench shares: the hub being measured, the bench context (database, plant,
 * config dir, the bench's own Postgres connection), printing and number formats, and the CPU-per-message
 * figures. The phases: drain.ts, capacity.ts + live.ts, baseline.ts, soak.ts; report.ts prints them;
 * bench/scenarios/ingest.ts runs them.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { BenchOptions } from '../../run.ts';
import type { BenchPlant } from '../ingest-setup.ts';
import type { CpuWindow } from '../proc-stats.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * The hub whose `bin/hub.ts ingest` is measured: this checkout, or BENCH_HUB_DIR (e.g. an older commit unpacked
 * with `git archive <commit> | tar -x -C dir` and a node_modules symlink) for an A/B comparison on one machine.
 */
export const HUB_DIR = process.env.BENCH_HUB_DIR ? `${process.env.BENCH_HUB_DIR.replace(/\/$/, '')}/` : ROOT;
export const SENSORS = 1000;
/** The hub's MQTT client id in the bench's iot.yml (its persistent session, and its line in the broker's log). */
export const HUB_CLIENT_ID = 'bench-ingest';
/** No commit for this long while messages are outstanding: the hub has stalled. */
export const STALL_MS = 10_000;

export const say = (s = '') => console.log(s);
/** Read-only git queries, for the record of what was measured. */
export const git = (...args: string[]) => {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const f1 = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n.toFixed(1) : 'n/a');

export interface Ctx {
  opts: BenchOptions;
  receiveMaximum: number;
  dbName: string;
  plant: BenchPlant;
  configDir: string;
  /** The bench's own connection (application_name oee-bench: not counted as the consumer's Postgres CPU). */
  pgc: pg.Client;
  publishers: number;
}

export const warmupSeconds = (o: BenchOptions) => (o.given.warmup ? o.warmup : o.quick ? 2 : 5);

export interface CpuShare {
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

export function cpuShare(w: CpuWindow, msgs: number): CpuShare {
  const usPerMsg = Object.fromEntries(Object.entries(w.seconds).map(([k, s]) => [k, (s * 1e6) / msgs]));
  return { wallSeconds: w.wallSeconds, seconds: w.seconds, usPerMsg, otherShare: w.otherShare, irqShare: w.irqShare };
}
