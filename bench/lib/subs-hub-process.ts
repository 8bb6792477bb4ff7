/**
 * Child processes of the subscriptions bench: the hub behind the gateway, as docker-compose runs it, in two
 * processes (so ingest's event loop is not the subgraphs'):
 *   BENCH_PART=subgraphs  the four subgraphs (iot and quality serving subscriptions from the live channel);
 *                         prints `READY {"production":url,...}`
 *   BENCH_PART=ingest     live ingest (MQTT → pipeline → Postgres → live channel), default pipeline settings
 *                         unless BENCH_BATCH_DELAY_MS; prints `READY {}`
 *   BENCH_DB_URL=... BENCH_MQTT_URL=... BENCH_PART=... node --import tsx bench/lib/subs-hub-process.ts
 */
import { Registry } from 'prom-client';
import { SUBGRAPHS, type SubgraphName } from '../../lib/config/hub.ts';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { startSubgraph } from '../../app/start-subgraph.ts';
import { SUBGRAPH_MODULES } from '../../app/subgraphs.ts';
import { openDatabase } from '../../lib/db/open.ts';
import { configureLog } from '../../lib/log.ts';
import { startIngest } from '../../lib/telemetry/ingest.ts';
import { watchLoopDelay } from './loop-delay.ts';
import { BENCH_INTERNAL_SECRET } from './env.ts';
import { SUBS_TOPIC } from './subs-setup.ts';
import { readyUntilSignal } from './child.ts';

configureLog({ level: process.env.LOG_LEVEL ?? 'info' });
const dbUrl = process.env.BENCH_DB_URL!;
const mqttUrl = process.env.BENCH_MQTT_URL!;
const db = await openDatabase(dbUrl, 10, false);
const loopDelay = watchLoopDelay();

if (process.env.BENCH_PART === 'ingest') {
  const iot = IotConfigSchema.parse({
    pipeline: process.env.BENCH_BATCH_DELAY_MS
      ? { batchMaxDelayMs: Number(process.env.BENCH_BATCH_DELAY_MS) }
      : undefined,
    mqtt: {
      clientId: `bench-subs-ingest-${process.pid}`,
      topics: [
        {
          pattern: `${SUBS_TOPIC}/+`,
          mapping: { sensorId: { topicSegment: 1 }, values: [{ path: 'value' }], timestamp: { path: 'ts' } },
        },
      ],
    },
  });
  const ingest = await startIngest({ db, databaseUrl: dbUrl, mqttUrl, iot, registry: new Registry() });
  readyUntilSignal({}, [() => ingest.stop(), () => db.destroy()], () => console.error(loopDelay()));
} else {
  const urls = {} as Record<SubgraphName, string>;
  const closers: (() => Promise<void>)[] = [];
  for (const name of SUBGRAPHS) {
    const s = await startSubgraph(SUBGRAPH_MODULES[name], {
      db,
      internalSecret: BENCH_INTERNAL_SECRET,
      host: '127.0.0.1',
      port: 0,
      live: { mqttUrl },
    });
    urls[name] = s.url;
    closers.push(s.close);
  }
  readyUntilSignal(urls, [...closers, () => db.destroy()], () => console.error(loopDelay()));
}
