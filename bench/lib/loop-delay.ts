import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Watches this bench child's event-loop delay: stalls here show up as latency tails. With BENCH_LOOP_LOG=1 it
 * logs the last 5 s every 5 s (the log has timestamps, so a stall can be placed in time); the returned function
 * describes the whole run, for the log at exit.
 */
export function watchLoopDelay(): () => string {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  const total = monitorEventLoopDelay({ resolution: 5 });
  total.enable();
  if (process.env.BENCH_LOOP_LOG === '1') {
    setInterval(() => {
      console.error(`${new Date().toISOString()} loop p99 ${ms(loop.percentile(99))} max ${ms(loop.max)} ms`);
      loop.reset();
    }, 5000).unref();
  }
  return () =>
    `event-loop delay ms: p50 ${ms(total.percentile(50))} p99 ${ms(total.percentile(99))} max ${ms(total.max)}`;
}
