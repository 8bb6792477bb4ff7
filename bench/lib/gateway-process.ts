/**
 * Child process 2 of the gateway bench: our gateway alone, in front of the subgraphs of process 1.
 * Prints `READY {"url":...}`.
 *   BENCH_SUBGRAPH_URLS='{"production":"http://...",...}' node --import tsx bench/lib/gateway-process.ts
 */
import type { SubgraphName } from '../../lib/config/hub.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { createUserTokenVerifier } from '../../lib/auth/tokens.ts';
import { startGateway } from '../../gateway/server.ts';
import { configureLog } from '../../lib/log.ts';
import { watchLoopDelay } from './loop-delay.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET } from './env.ts';
import { readyUntilSignal } from './child.ts';

configureLog({ level: process.env.LOG_LEVEL ?? 'info' });
const subgraphUrls = JSON.parse(process.env.BENCH_SUBGRAPH_URLS ?? '') as Record<SubgraphName, string>;
const gw = await startGateway({
  supergraphSdl: readSupergraph(),
  subgraphUrls,
  verifyUser: createUserTokenVerifier({ secret: BENCH_JWT_SECRET }),
  internalSecret: BENCH_INTERNAL_SECRET,
  host: '127.0.0.1',
  port: 0,
});

const loopDelay = watchLoopDelay();

readyUntilSignal({ url: gw.url }, [() => gw.close()], () => console.error(loopDelay()));
