/**
 * Child process 2 of the gateway bench: our gateway alone, in front of the subgraphs of process 1.
 * Prints `READY {"url":...}`.
 *   BENCH_SUBGRAPH_URLS='{"production":"http://...",...}' node --import tsx bench/lib/gateway-process.ts
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { SubgraphName } from '../../lib/config/hub.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { createUserTokenVerifier } from '../../lib/auth/tokens.ts';
import { startGateway } from '../../gateway/server.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET } from './env.ts';

const subgraphUrls = JSON.parse(process.env.BENCH_SUBGRAPH_URLS ?? '') as Record<SubgraphName, string>;
const gw = await startGateway({
  supergraphSdl: readSupergraph(),
  subgraphUrls,
  verifyUser: createUserTokenVerifier({ secret: BENCH_JWT_SECRET }),
  internalSecret: BENCH_INTERNAL_SECRET,
  host: '127.0.0.1',
  port: 0,
});

// Event-loop delay, written to the log at exit: stalls here show up as latency tails in the benches.
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
// Every 5 s, the last 5 s: stalls then show up at the time they happened (the log has timestamps).
if (process.env.BENCH_LOOP_LOG === '1') {
  setInterval(() => {
    console.error(`${new Date().toISOString()} loop p99 ${(loop.percentile(99) / 1e6).toFixed(1)} max ${(loop.max / 1e6).toFixed(1)} ms`);
    loop.reset();
  }, 5000).unref();
}

async function shutdown(): Promise<void> {
  console.error(`event-loop delay ms: p50 ${(loop.percentile(50) / 1e6).toFixed(1)} p99 ${(loop.percentile(99) / 1e6).toFixed(1)} max ${(loop.max / 1e6).toFixed(1)}`);
  await gw.close().catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

console.log(`READY ${JSON.stringify({ url: gw.url })}`);
