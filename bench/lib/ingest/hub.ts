/**
 * The hub's side: its ingest process (`bin/hub.ts ingest`, as deployed) started, primed and watched through
 * its ops port, the rows it stored, the processes its CPU is counted over, and the optional live-channel
 * listener (BENCH_LIVE_LISTENER=1).
 */
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { LIVE_PREFIX, listenerPayload, listenerTopic, listenerWill } from '../../../lib/telemetry/live.ts';
import { freePort } from '../../../lib/embedded/free-port.ts';
import type { Broker } from '../broker.ts';
import { Publisher } from '../mqtt-publisher.ts';
import { onCleanup, startChild, tsxArgs, waitForHttp, type Child } from '../proc.ts';
import { postgresPids } from '../proc-stats.ts';
import { HUB_DIR, sleep, type Ctx } from './common.ts';
import { TOPICS } from './messages.ts';

/**
 * BENCH_LIVE_LISTENER=1: a live-channel consumer announced on the hub's broker for all three measures, as an open
 * dashboard would be; without one the ingest publishes nothing live (lib/telemetry/live.ts). It counts what
 * arrives without parsing it (its CPU shows under "bench").
 */
export async function liveListener(broker: Broker) {
  const id = `bench-ingest-live-${process.pid}`;
  const announcement = listenerTopic(LIVE_PREFIX, id);
  const client = await mqtt.connectAsync(broker.url, { clientId: id, will: listenerWill(LIVE_PREFIX, id) });
  onCleanup(() => void client.end(true));
  const counts = { client, messages: 0, bytes: 0 };
  client.on('message', (_topic, payload) => {
    counts.messages++;
    counts.bytes += payload.length;
  });
  await client.subscribeAsync(`${LIVE_PREFIX}/readings/+`, { qos: 0 });
  await client.publishAsync(announcement, listenerPayload(['readings']), { qos: 1, retain: true });
  return counts;
}

export interface Ingest {
  child: Child;
  pid: number;
  ops: string;
}

export async function startIngest(ctx: Ctx, name: string, broker: Broker): Promise<Ingest> {
  const port = await freePort();
  const [node, args] = tsxArgs(`${HUB_DIR}bin/hub.ts`, 'ingest');
  // BENCH_INGEST_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": to profile the ingest under this load.
  args.unshift(...(process.env.BENCH_INGEST_NODE_ARGS?.split(' ').filter(Boolean) ?? []));
  const child = await startChild(name, node, args, {
    cwd: HUB_DIR,
    readyLine: false,
    env: {
      DATABASE_URL: ctx.plant.url,
      MQTT_URL: broker.url,
      HUB_CONFIG_DIR: ctx.configDir,
      PORT: String(port),
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HUB_ROLE: 'ingest',
    },
  });
  return { child, pid: child.proc.pid!, ops: `http://127.0.0.1:${port}` };
}

export interface IngestCounters {
  stored: number;
  deadLetters: number;
}

/**
 * hub_ingest_readings_total{outcome="stored"} and hub_ingest_dead_letters_total from /metrics (undefined: not up yet).
 */
export async function ingestCounters(ops: string): Promise<IngestCounters | undefined> {
  try {
    const text = await (await fetch(`${ops}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    let stored = 0;
    let deadLetters = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('hub_ingest_readings_total{') && line.includes('outcome="stored"'))
        stored += Number(line.slice(line.lastIndexOf(' ') + 1));
      else if (line.startsWith('hub_ingest_dead_letters_total{'))
        deadLetters += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return { stored, deadLetters };
  } catch {
    return undefined;
  }
}

/**
 * The time (ms) of the hub's "mqtt ingest connected" log line (its first CONNACK) and whether a session was present.
 */
export async function connectedAt(ingest: Ingest, since: number): Promise<{ at: number; sessionPresent: boolean }> {
  const until = Date.now() + 10_000;
  for (;;) {
    for (const line of readFileSync(ingest.child.logFile, 'utf8').split('\n')) {
      if (!line.includes('"mqtt ingest connected"')) continue;
      const j = JSON.parse(line) as { time: number; sessionPresent: boolean };
      if (j.time >= since) return { at: j.time, sessionPresent: j.sessionPresent }; // not a previous run's line
    }
    if (Date.now() > until) throw new Error(`no "mqtt ingest connected" line in ${ingest.child.logFile}`);
    await sleep(20);
  }
}

let probeSeq = 0;
/**
 * Starts the ingest and waits until it stores a probe message (so its session and subscription exist): /readyz
 * only says the broker connection is up.
 */
export async function startPrimedIngest(ctx: Ctx, name: string, broker: Broker): Promise<Ingest> {
  const ingest = await startIngest(ctx, name, broker);
  await waitForHttp(`${ingest.ops}/readyz`, ingest.child, 60_000);
  const probeBase = Date.now() - 30 * 86_400_000;
  const pub = await Publisher.connect(
    broker.host,
    broker.port,
    1,
    {
      topic: () => TOPICS[0]!,
      payload: () => `{"v":0,"t":${probeBase + probeSeq++},"probe":true}`,
    },
    { clientIdPrefix: `bench-probe-${process.pid}` },
  );
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      await pub.publishAll(1);
      for (let i = 0; i < 20; i++) {
        if (((await ingestCounters(ingest.ops))?.stored ?? 0) >= 1) return ingest;
        await sleep(50);
      }
      if (Date.now() > until)
        throw new Error(`${name} stored no probe message within 30 s; see ${ingest.child.logFile}`);
    }
  } finally {
    await pub.close();
  }
}

/**
 * The rows stored for a measure's range. The primary key on (series_id, ts) makes each a distinct reading: a
 * count of duplicate rows would check nothing (what a redelivery could double is checked by rollups.ts).
 */
export async function countHubRows(ctx: Ctx, base: number, n: number): Promise<{ distinct: number }> {
  const { rows } = await ctx.pgc.query<{ distinct: number }>(
    'select count(*)::int as distinct from telemetry.readings where ts >= $1 and ts < $2',
    [new Date(base), new Date(base + n)],
  );
  return rows[0]!;
}

export async function hubGroups(ctx: Ctx, broker: Broker, ingest: Ingest): Promise<Record<string, number[]>> {
  const p = await postgresPids(ctx.dbName);
  return {
    consumer: [ingest.pid],
    broker: [broker.pid],
    postgres: p.backends,
    'pg background': p.background,
    bench: [process.pid],
  };
}
