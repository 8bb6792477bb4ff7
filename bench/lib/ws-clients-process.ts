/**
 * Child process of the subscriptions bench: COUNT dashboards, each its own graphql-transport-ws connection with
 * one subscription to one machine (client i watches machine (OFFSET + i) mod MACHINES). Latency is the time
 * from the reading's timestamp (set by the publisher at publish time, same clock) to its arrival here, kept
 * in a 0.1 ms histogram. Every event frame is checked against the client's filter (its machine, and that
 * machine's one sensor) and counted once per (client, reading): a reading is its timestamp, unique per sensor
 * (the publisher sees to it), so a duplicate cannot hide a loss. Driven over IPC by the scenario: status, reset
 * (start counting), report, close.
 *   BENCH_WS_URL=ws://... BENCH_TOKEN=... BENCH_QUERY=... COUNT=2500 OFFSET=0 MACHINES=500 (forked with IPC)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { subsMachineId, subsSensorId } from './subs-setup.ts';

const url = process.env.BENCH_WS_URL!;
const token = process.env.BENCH_TOKEN!;
const query = process.env.BENCH_QUERY!;
const count = Number(process.env.COUNT);
const offset = Number(process.env.OFFSET);
const machines = Number(process.env.MACHINES);

/** 0.1 ms buckets up to 10 s; the last bucket holds everything slower. */
const BUCKETS = 100_001;
let hist = new Uint32Array(BUCKETS);
let t0 = Infinity;
/** Distinct (client, reading) pairs inside the window whose machine and sensor match the client's filter. */
let events = 0;
/** Frames of a (client, reading) pair already counted. */
let duplicates = 0;
/** Event frames of another machine or sensor than the client subscribed to (never counted as delivered). */
let mismatches = 0;
let frames = 0;
let early = 0;
let errors = 0;
let firstError: string | undefined;
let firstMismatch: string | undefined;
let acked = 0;
const sockets: WebSocket[] = [];

/** One dashboard: what its filter asks for, and the readings (timestamps, ms) it has received in the window. */
interface Dashboard {
  machineId: string;
  sensorId: string;
  seen: Set<number>;
}
const dashboards: Dashboard[] = [];
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

/**
 * The load generator must not be the bottleneck it measures: an event frame is recognised by its prefix and its
 * reading's time found by substring, instead of parsing 20,000 JSON frames a second; anything else is parsed.
 */
const NEXT = Buffer.from('{"id":"1","type":"next","payload":{"data":{"sensorReadings":');
const TS = Buffer.from('"ts":"');
const SENSOR_ID = Buffer.from('"sensor":{"id":"');
const MACHINE_ID = Buffer.from('"machine":{"id":"');
/** The string value that follows `key` in the frame (up to the next quote), or undefined. */
function after(data: Buffer, key: Buffer): string | undefined {
  const at = data.indexOf(key);
  if (at < 0) return undefined;
  const end = data.indexOf(34 /* " */, at + key.length);
  return end < 0 ? undefined : data.toString('latin1', at + key.length, end);
}

/**
 * An event for dashboard `d` of the reading stamped `ts`, of `sensorId` on `machineId`, received `now`: checked
 * against d's filter, then counted once (or set aside as before the window).
 */
function record(d: Dashboard, ts: number, sensorId: unknown, machineId: unknown, now: number): void {
  if (machineId !== d.machineId || sensorId !== d.sensorId) {
    mismatches++;
    firstMismatch ??= `subscribed to ${d.machineId} (${d.sensorId}), got ${machineId} (${sensorId})`;
    return;
  }
  if (ts < t0) return void early++;
  if (d.seen.has(ts)) return void duplicates++;
  d.seen.add(ts);
  events++;
  hist[Math.min(BUCKETS - 1, Math.max(0, Math.round((now - ts) * 10)))]!++;
}

function onFrame(d: Dashboard, data: Buffer): void {
  const now = performance.timeOrigin + performance.now();
  frames++;
  if (data.length > NEXT.length && data.subarray(0, NEXT.length).equals(NEXT)) {
    const at = data.indexOf(TS);
    const ts = at < 0 ? NaN : Date.parse(data.toString('latin1', at + TS.length, at + TS.length + 24));
    const sensorId = after(data, SENSOR_ID);
    const machineId = after(data, MACHINE_ID);
    if (Number.isNaN(ts) || data.includes('"errors"')) {
      errors++;
      firstError ??= data.toString().slice(0, 300);
      return;
    }
    // Ids not where the fast path looks (another gateway's layout): the parsed frame has the final word.
    if (sensorId !== undefined && machineId !== undefined) {
      record(d, ts, sensorId, machineId, now);
      return;
    }
  }
  const msg = JSON.parse(data.toString());
  if (msg.type === 'connection_ack') acked++;
  else if (msg.type === 'error' || msg.type === 'next') {
    // A `next` that is not a plain event (the prefix did not match): errors, or another gateway's key order.
    const r = msg.payload?.data?.sensorReadings;
    if (msg.type === 'next' && r && !msg.payload.errors) {
      record(d, Date.parse(r.ts), r.sensor?.id, r.machine?.id, now);
      return;
    }
    errors++;
    firstError ??= JSON.stringify(msg.payload).slice(0, 300);
  }
}

function open(i: number): Promise<void> {
  const m = (offset + i) % machines;
  const d: Dashboard = { machineId: subsMachineId(m), sensorId: subsSensorId(m), seen: new Set() };
  dashboards.push(d);
  return new Promise((resolve) => {
    // The load generator trusts the gateway's UTF-8 (validating 20,000 frames/s is the client's cost, not the
    // gateway's).
    const ws = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false, skipUTF8Validation: true });
    sockets.push(ws);
    ws.on('open', () => {
      // Both spellings: our gateway reads `authorization`, Hive's JWT plugin `token`.
      ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}`, token } }));
    });
    ws.on('message', (data) => {
      const wasAcked = acked;
      onFrame(d, data as Buffer);
      if (acked > wasAcked) {
        ws.send(
          JSON.stringify({
            id: '1',
            type: 'subscribe',
            payload: { query, variables: { f: { machineIds: [d.machineId] } } },
          }),
        );
        resolve();
      }
    });
    ws.on('close', (code) => {
      if (code !== 1000 && code !== 1001) firstError ??= `closed ${code}`;
      resolve();
    });
    ws.on('error', (e) => {
      firstError ??= e.message;
    });
  });
}

// Connect in waves: ten thousand simultaneous handshakes would measure the accept queue, not the gateway.
for (let i = 0; i < count; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, k) => open(i + k)));
}

process.on('message', (m: { type: string; t0?: number }) => {
  if (m.type === 'status') process.send!({ type: 'status', acked, firstError });
  else if (m.type === 'reset') {
    t0 = m.t0!;
    hist = new Uint32Array(BUCKETS);
    events = duplicates = mismatches = early = errors = frames = 0;
    firstError = firstMismatch = undefined;
    for (const d of dashboards) d.seen.clear();
    loop.reset();
  } else if (m.type === 'report') {
    // Sparse: [bucket, count] pairs only.
    const pairs: number[] = [];
    for (let b = 0; b < BUCKETS; b++) if (hist[b]) pairs.push(b, hist[b]!);
    process.send!({
      type: 'report',
      events,
      duplicates,
      mismatches,
      firstMismatch,
      frames,
      early,
      errors,
      firstError,
      pairs,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
    });
  } else if (m.type === 'close') {
    for (const ws of sockets) ws.close(1000);
    setTimeout(() => process.exit(0), 500);
  }
});
process.send!({ type: 'ready' });
