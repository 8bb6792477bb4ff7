/**
 * Per-process figures from /proc for the ingest bench: CPU time per group of processes over a window (groups
 * re-listed at the end, so a Postgres backend that connected meanwhile is counted from its start) and resident
 * memory.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import pg from 'pg';
import { cpuSeconds } from './cpu.ts';
import { PG_ADMIN_URL } from './env.ts';

const CLOCK_TICKS = 100;

/** Busy CPU seconds of the whole machine, and the part spent in interrupts (loopback TCP is mostly softirq work,
 * charged to no process). */
function machineSeconds(): { busy: number; irq: number } {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return {
    busy: (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS,
    irq: (irq! + softirq!) / CLOCK_TICKS,
  };
}

/** VmRSS of a process in MiB (NaN once it is gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Postgres server processes: the client backends connected to `db` (minus the bench's own, which set
 * application_name 'oee-bench'), and the shared background processes that write WAL and pages.
 */
export async function postgresPids(
  db: string,
): Promise<{ backends: number[]; bench: number[]; background: number[]; byApp: Record<string, number[]> }> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, application_name: 'oee-bench' });
  await client.connect();
  try {
    const { rows } = await client.query<{
      pid: number;
      datname: string | null;
      backend_type: string;
      application_name: string;
    }>('select pid, datname, backend_type, application_name from pg_stat_activity where pid <> pg_backend_pid()');
    return {
      backends: rows
        .filter((r) => r.datname === db && r.backend_type === 'client backend' && r.application_name !== 'oee-bench')
        .map((r) => r.pid),
      bench: rows.filter((r) => r.datname === db && r.application_name === 'oee-bench').map((r) => r.pid),
      background: rows
        .filter((r) => ['walwriter', 'checkpointer', 'background writer'].includes(r.backend_type))
        .map((r) => r.pid),
      byApp: rows
        .filter((r) => r.datname === db)
        .reduce<Record<string, number[]>>((m, r) => {
          let pids = m[r.application_name];
          if (!pids) {
            pids = [];
            m[r.application_name] = pids;
          }
          pids.push(r.pid);
          return m;
        }, {}),
    };
  } finally {
    await client.end();
  }
}

export interface CpuWindow {
  wallSeconds: number;
  /** CPU seconds per group. */
  seconds: Record<string, number>;
  /** Share of the machine's CPU capacity (all cores) used by processes in no group (interrupts excluded). */
  otherShare: number;
  /** Share of the machine's CPU capacity spent in (soft)interrupts: mostly our own loopback traffic. */
  irqShare: number;
}

export interface CpuMeter {
  /** Re-reads the CPU time of the pids known so far (cheap: /proc only), so a process that exits before
   * `end` still counts up to its last reading. */
  tick(): void;
  /** Lists the groups again and returns the window's figures. */
  end(): Promise<CpuWindow>;
}

/**
 * Starts a CPU window: `groups()` lists the pids of each group, now and again at `end()`; a pid first seen at
 * the end counts all its CPU time (it started inside the window), one gone by then counts up to its last tick.
 */
export async function cpuWindow(groups: () => Promise<Record<string, number[]>>): Promise<CpuMeter> {
  const start = new Map<number, number>();
  const latest = new Map<number, number>();
  const owner = new Map<number, string>();
  for (const [name, pids] of Object.entries(await groups())) {
    for (const pid of pids) {
      const c = cpuSeconds(pid);
      start.set(pid, c);
      latest.set(pid, c);
      owner.set(pid, name);
    }
  }
  const machine0 = machineSeconds();
  const t0 = performance.now();
  const tick = () => {
    for (const pid of latest.keys()) {
      const c = cpuSeconds(pid);
      if (c > 0) latest.set(pid, c);
    }
  };
  return {
    tick,
    async end() {
      tick();
      const now = await groups();
      const wallSeconds = (performance.now() - t0) / 1000;
      const m = machineSeconds();
      const busy = m.busy - machine0.busy;
      const irq = m.irq - machine0.irq;
      const seconds: Record<string, number> = Object.fromEntries(Object.keys(now).map((k) => [k, 0]));
      const seen = new Set<number>();
      const add = (name: string, pid: number, c: number) => {
        if (seen.has(pid)) return;
        seen.add(pid);
        seconds[name] = (seconds[name] ?? 0) + Math.max(0, c - (start.get(pid) ?? 0));
      };
      for (const [name, pids] of Object.entries(now)) {
        for (const pid of pids) {
          const c = cpuSeconds(pid);
          add(name, pid, c > 0 ? c : (latest.get(pid) ?? 0));
        }
      }
      for (const [pid, c] of latest) add(owner.get(pid)!, pid, c); // gone since the start
      const ours = Object.values(seconds).reduce((a, b) => a + b, 0);
      const capacity = wallSeconds * cpus().length;
      return {
        wallSeconds,
        seconds,
        otherShare: Math.max(0, (busy - irq - ours) / capacity),
        irqShare: irq / capacity,
      };
    },
  };
}
