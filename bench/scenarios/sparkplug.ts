/**
 * Throughput of the Sparkplug path on this machine: decode alone, and decode + SparkplugState.handle, for a DDATA
 * with 10 alias-only metrics (the common shape after a birth). In this process, no broker, no database.
 *
 *   npm run bench -- sparkplug [--messages n]   (300,000 messages per run; 100,000 with --quick)
 */
import type { BenchOptions } from '../run.ts';
import { buildBirth, buildData, type DataMetric } from '../../lib/telemetry/sparkplug/build.ts';
import { decodePayload } from '../../lib/telemetry/sparkplug/codec.ts';
import { SparkplugState } from '../../lib/telemetry/sparkplug/edge-state.ts';
import { DataType } from '../../lib/telemetry/sparkplug/proto.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';
import { writeSummary } from '../lib/summary.ts';

const GROUP = 'Plant1';
const NODE = 'edge-07';
const DEVICE = 'press-3';

const types = [
  DataType.Float,
  DataType.Float,
  DataType.Double,
  DataType.Double,
  DataType.Int32,
  DataType.Int16,
  DataType.UInt32,
  DataType.UInt64,
  DataType.Int64,
  DataType.Boolean,
];

function valueFor(datatype: number, i: number): number | boolean {
  switch (datatype) {
    case DataType.Float:
    case DataType.Double:
      return 20 + ((i * 7) % 1000) / 10;
    case DataType.Boolean:
      return i % 2 === 0;
    case DataType.Int16:
    case DataType.Int32:
    case DataType.Int64:
      return (i % 2000) - 1000;
    default:
      return i * 3;
  }
}

interface Figures {
  msgsPerSecond: number;
  usPerMsg: number;
  valuesPerSecond: number;
}

export async function run(o: BenchOptions): Promise<void> {
  const N = o.messages ?? (o.quick ? 100_000 : 300_000);
  const t0 = 1_714_543_200_000;
  const nbirth = buildBirth({ bdSeq: 1, timestamp: t0, metrics: [] });
  const dbirth = buildBirth({
    seq: 1,
    timestamp: t0,
    metrics: types.map((datatype, a) => ({ name: `m${a}`, alias: a + 1, datatype, value: valueFor(datatype, 0) })),
  });
  // One DDATA per seq value, so cycling through them in order never shows a gap (seq wraps 255 → 0).
  const ddata: Buffer[] = [];
  for (let seq = 0; seq < 256; seq++) {
    const metrics: DataMetric[] = types.map((datatype, a) => ({
      alias: a + 1,
      datatype,
      value: valueFor(datatype, seq + a),
      timestamp: t0 + seq,
    }));
    ddata.push(buildData({ seq, timestamp: t0 + seq, metrics }));
  }

  function bench(fn: (i: number) => void): Figures {
    for (let i = 0; i < Math.min(N, 50_000); i++) fn(i); // warm-up: let V8 optimise
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn(i);
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const rate = N / secs;
    return { msgsPerSecond: rate, usPerMsg: 1e6 / rate, valuesPerSecond: rate * types.length };
  }

  const bytes = ddata[2]!.length;
  console.log(
    `DDATA with 10 alias-only metrics (${bytes} bytes), ${N.toLocaleString('en-US')} messages per run, ` +
      `node ${process.version}\n`,
  );

  let sink = 0;
  const decode = bench((i) => {
    sink += decodePayload(ddata[i & 0xff]!).metrics.length;
  });

  const state = new SparkplugState();
  const received = new Date(t0);
  state.handle(`spBv1.0/${GROUP}/NBIRTH/${NODE}`, nbirth, received);
  state.handle(`spBv1.0/${GROUP}/DBIRTH/${NODE}/${DEVICE}`, dbirth, received);
  const topic = `spBv1.0/${GROUP}/DDATA/${NODE}/${DEVICE}`;
  let problems = 0;
  let seq = 2; // continues the DBIRTH's seq 1 across warm-up and the timed run
  const handle = bench(() => {
    const r = state.handle(topic, ddata[seq++ & 0xff]!, received);
    sink += r.values.length;
    if (r.deadLetters.length > 0 || r.seqGap) problems++;
  });
  if (problems > 0) throw new Error(`${problems} messages had dead letters or gaps: not the happy path`);
  // Keeps the results observable so V8 cannot drop the work.
  if (sink < 0) console.log(sink);

  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const row = (label: string, f: Figures) => [
    label,
    fmt(f.msgsPerSecond),
    f.usPerMsg.toFixed(2),
    fmt(f.valuesPerSecond),
  ];
  console.log(table(['path', 'msg/s', 'µs/msg', 'values/s'], [row('decode', decode), row('decode + handle', handle)]));
  const file = writeResult('sparkplug', {
    at: new Date().toISOString(),
    options: o,
    node: process.version,
    messages: N,
    payloadBytes: bytes,
    metricsPerMessage: types.length,
    decode,
    decodeAndHandle: handle,
  });
  console.log(`\nfull figures: ${file}`);
  const line = resultLine('sparkplug', {
    decode_msgs_per_s: String(Math.round(decode.msgsPerSecond)),
    decode_us: decode.usPerMsg.toFixed(2),
    handle_msgs_per_s: String(Math.round(handle.msgsPerSecond)),
    handle_us: handle.usPerMsg.toFixed(2),
  });
  const summary = await writeSummary('sparkplug', o, [line], { messages: N, decode, decodeAndHandle: handle });
  console.log(`summary (commit it when quoted): ${summary}`);
  console.log(line);
}
