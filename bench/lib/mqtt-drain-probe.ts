/**
 * How fast MqttIngestClient drains a backlog of QoS 1 messages queued for its offline persistent session,
 * acking each batch only after a simulated commit. Standalone:
 *
 *   npx tsx bench/lib/mqtt-drain-probe.ts [--messages 200000] [--commit-ms 2] [--publishers 4]
 *                                         [--receive-maximum 65535]
 *
 * Prints the figures and a last line `RESULT mqtt-drain key=value ...`.
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { MqttIngestClient, type InboundMessage } from '../../lib/mqtt/ingest-client.ts';
import { startMosquitto } from '../../test/helpers/mosquitto.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    'commit-ms': { type: 'string', default: '2' },
    publishers: { type: 'string', default: '4' },
    'receive-maximum': { type: 'string', default: '65535' },
  },
});
const N = Number(values.messages);
const COMMIT_MS = Number(values['commit-ms']);
const PUBLISHERS = Number(values.publishers);
const RECEIVE_MAXIMUM = Number(values['receive-maximum']);
const TOPIC_PREFIX = 'plant1/line';
const CLIENT_ID = 'drain-probe';

// Persistence on: what production runs, and it makes Mosquitto do its real per-message bookkeeping.
const broker = await startMosquitto({ persistence: true });
try {
  const subs = [{ filter: `${TOPIC_PREFIX}/#`, qos: 1 as const }];
  // Create the persistent session and its subscription, then go away so everything queues.
  const setup = new MqttIngestClient({ url: broker.url, clientId: CLIENT_ID, subscriptions: subs }, () => {});
  const subscribed = new Promise((resolve) => setup.once('subscribed', resolve));
  await setup.start();
  await subscribed;
  await setup.stop();

  const t0 = performance.now();
  await publishAll(broker.url);
  const publishMs = performance.now() - t0;
  console.log(`queued ${N} msgs with ${PUBLISHERS} publishers in ${(publishMs / 1000).toFixed(1)} s`);

  let maxInFlight = 0;
  let batches = 0;
  let largestBatch = 0;
  let commits = 0;
  const seen = new Set<number>();
  let client!: MqttIngestClient;
  // One commit at a time, like the pipeline's writer: batches arriving meanwhile are merged into the next one.
  let queue: InboundMessage[] = [];
  let committing = false;
  const commitNext = () => {
    if (committing || queue.length === 0) return;
    committing = true;
    const batch = queue;
    queue = [];
    setTimeout(() => {
      commits++;
      client.ack(batch);
      committing = false;
      commitNext();
    }, COMMIT_MS);
  };
  client = new MqttIngestClient(
    { url: broker.url, clientId: CLIENT_ID, subscriptions: subs, receiveMaximum: RECEIVE_MAXIMUM },
    (msgs) => {
      batches++;
      largestBatch = Math.max(largestBatch, msgs.length);
      for (const m of msgs) {
        seen.add(JSON.parse(m.payload.toString('utf8')).seq);
        queue.push(m);
      }
      maxInFlight = Math.max(maxInFlight, client.stats.inFlight);
      commitNext();
    },
  );
  client.on('error', (err) => console.error('client error:', err.message));
  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  const { sessionPresent } = await client.start();
  await waitFor(() => client.stats.acked >= N, 300_000);
  const drainMs = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  await client.stop();

  const rate = Math.round(N / (drainMs / 1000));
  console.log(`sessionPresent=${sessionPresent}, received ${client.stats.received}, distinct ${seen.size}`);
  console.log(`drained ${N} msgs in ${(drainMs / 1000).toFixed(2)} s = ${rate} msgs/s`);
  console.log(`socket batches ${batches} (largest ${largestBatch}), commits ${commits}, max unacked ${maxInFlight}`);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const cpuPct = Math.round((100 * cpuMs) / drainMs);
  console.log(`this process: ${Math.round(cpuMs)} ms CPU over ${Math.round(drainMs)} ms (${cpuPct}% of a core)`);
  console.log(
    `RESULT mqtt-drain msgs=${N} commit_ms=${COMMIT_MS} msgs_per_s=${rate} max_in_flight=${maxInFlight} ` +
      `commits=${commits} missing=${N - seen.size} client_cpu_pct=${cpuPct}`,
  );
} finally {
  await broker.stop();
}

async function publishAll(url: string): Promise<void> {
  const filler = 'x'.repeat(40);
  const per = Math.ceil(N / PUBLISHERS);
  await Promise.all(
    Array.from({ length: PUBLISHERS }, async (_, p) => {
      const pub = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `drain-pub-${p}` });
      const from = p * per;
      const to = Math.min(N, from + per);
      for (let i = from; i < to; i += 1000) {
        const sends: Promise<unknown>[] = [];
        for (let seq = i; seq < Math.min(to, i + 1000); seq++) {
          const payload = JSON.stringify({ seq, ts: Date.now(), value: Math.round(seq * 1.7) / 10, q: filler });
          sends.push(pub.publishAsync(`${TOPIC_PREFIX}/${p}/m${seq % 50}`, payload, { qos: 1 }));
        }
        await Promise.all(sends);
      }
      await pub.endAsync();
    }),
  );
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
