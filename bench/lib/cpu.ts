import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const CLOCK_TICKS = 100; // USER_HZ on Linux (getconf CLK_TCK)

/** CPU seconds (user + system) a process has used so far, from /proc (Linux only; 0 once it is gone). */
export function cpuSeconds(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is [0], utime [11], stime [12].
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (all CPUs), from the first line of /proc/stat. */
function machineBusySeconds(): number {
  try {
    const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

export interface CpuUse {
  /** CPU seconds per group of processes. */
  seconds: Record<string, number>;
  /** Share of the machine's CPU capacity used by processes outside the groups (other people's work). */
  otherShare: number;
}

/**
 * Snapshots the CPU time of groups of processes (e.g. gateway, subgraphs, postgres backends, the bench itself)
 * and of the whole machine; the returned function tells what each used since, and how much went elsewhere.
 */
export function cpuMeter(groups: Record<string, number[]>): () => CpuUse {
  const sum = (pids: number[]) => pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const start = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, sum(pids)]));
  const machine0 = machineBusySeconds();
  const t0 = process.hrtime.bigint();
  return () => {
    const seconds = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, sum(pids) - start[k]!]));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const ours = Object.values(seconds).reduce((a, b) => a + b, 0);
    const otherShare = Math.max(0, (machineBusySeconds() - machine0 - ours) / (wall * cpus().length));
    return { seconds, otherShare };
  };
}
