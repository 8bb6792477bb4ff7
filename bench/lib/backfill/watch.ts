/**
 * What the backfill bench watches while the hub works: the resident memory of its processes, sampled, and the
 * kernel's own peak (VmHWM), which no sampling interval can miss.
 */
import { readFileSync } from 'node:fs';
import { rssMiB } from '../proc-stats.ts';

/** VmHWM (peak resident set since the process started) in MiB; NaN once it is gone. */
export function peakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface RssSample {
  /** Seconds since the sampler started. */
  t: number;
  mib: Record<string, number>;
}

/** Samples VmRSS of each named process every `ms` until stopped; returns the samples and each one's maximum. */
export function sampleRss(pids: Record<string, number>, ms = 250) {
  const samples: RssSample[] = [];
  const t0 = performance.now();
  const take = () =>
    samples.push({
      t: (performance.now() - t0) / 1000,
      mib: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, rssMiB(pid)])),
    });
  take();
  const timer = setInterval(take, ms);
  return {
    stop() {
      clearInterval(timer);
      take();
      const max = Object.fromEntries(
        Object.keys(pids).map((k) => [k, Math.max(...samples.map((s) => s.mib[k]!).filter(Number.isFinite))]),
      );
      return { samples, max };
    },
  };
}
