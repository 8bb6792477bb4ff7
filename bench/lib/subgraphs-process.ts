/**
 * Child process 1 of the gateway bench: the four subgraphs on free local ports, over a fresh database
 * seeded with the demo plant. Prints `READY {"production":url,...}` once everything answers.
 *   BENCH_DB=<database name> node --import tsx bench/lib/subgraphs-process.ts
 */
import { sql } from 'kysely';
import { SUBGRAPHS, type SubgraphName } from '../../lib/config/hub.ts';
import { startSubgraph } from '../../app/start-subgraph.ts';
import { SUBGRAPH_MODULES } from '../../app/subgraphs.ts';
import { openDatabase } from '../../lib/db/open.ts';
import { configureLog } from '../../lib/log.ts';
import { readSupergraph } from '../../lib/schema.ts';
import { createUserTokenVerifier, signUserToken } from '../../lib/auth/tokens.ts';
import { seedDemo } from '../../app/demo/seed.ts';
import { startGateway } from '../../gateway/server.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET, createBenchDatabase } from './env.ts';
import { readyUntilSignal } from './child.ts';

configureLog({ level: process.env.LOG_LEVEL ?? 'info' });
const dbName = process.env.BENCH_DB;
if (!dbName || !/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error('BENCH_DB must name the bench database');

const db = await openDatabase(await createBenchDatabase(dbName), 10);
const urls = {} as Record<SubgraphName, string>;
const closers: (() => Promise<void>)[] = [];
for (const name of SUBGRAPHS) {
  const s = await startSubgraph(SUBGRAPH_MODULES[name], {
    db,
    internalSecret: BENCH_INTERNAL_SECRET,
    host: '127.0.0.1',
    port: 0,
  });
  urls[name] = s.url;
  closers.push(s.close);
}

// seedDemo creates the plant through the public API, so a temporary gateway runs here only while seeding;
// it is closed before the measured one (another process) starts.
const seeder = await startGateway({
  supergraphSdl: readSupergraph(),
  subgraphUrls: urls,
  verifyUser: createUserTokenVerifier({ secret: BENCH_JWT_SECRET }),
  internalSecret: BENCH_INTERNAL_SECRET,
  host: '127.0.0.1',
  port: 0,
});
await seedDemo(db, seeder.url, await signUserToken(BENCH_JWT_SECRET, { sub: 'bench-seed', role: 'admin' }));
await seeder.close();
// Fresh tables have no planner statistics until autovacuum gets to them, maybe in the middle of a measurement:
// analyse now so every target runs against the same query plans.
await sql`VACUUM ANALYZE`.execute(db);

readyUntilSignal(urls, [...closers, () => db.destroy()]);
