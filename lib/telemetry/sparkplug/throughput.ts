/**
 * Throughput of the Sparkplug path on this machine: decode alone, and decode + SparkplugState.handle, for a DDATA
 * with 10 alias-only metrics (the common shape after a birth). Not a test: prints figures.
 *
 *   npx tsx lib/telemetry/sparkplug/throughput.ts [messages=300000]
 */
import { buildBirth, buildData, type DataMetric } from './build.ts';
import { decodePayload } from './codec.ts';
import { SparkplugState } from './edge-state.ts';
import { DataType } from './proto.ts';

const N = Number(process.argv[2] ?? 300_000);
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

function bench(label: string, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(N, 50_000); i++) fn(i); // warm-up: let V8 optimise
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = N / secs;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(
    `${label.padEnd(16)} ${fmt(rate).padStart(9)} msg/s  ${(1e6 / rate).toFixed(2)} µs/msg  ${fmt(rate * 10)} values/s`,
  );
  return rate;
}

console.log(
  `DDATA with 10 alias-only metrics (${ddata[2]!.length} bytes), ${N.toLocaleString('en-US')} messages per run, ` +
    `node ${process.version}`,
);

let sink = 0;
bench('decode', (i) => {
  sink += decodePayload(ddata[i & 0xff]!).metrics.length;
});

const state = new SparkplugState();
const received = new Date(t0);
state.handle(`spBv1.0/${GROUP}/NBIRTH/${NODE}`, nbirth, received);
state.handle(`spBv1.0/${GROUP}/DBIRTH/${NODE}/${DEVICE}`, dbirth, received);
const topic = `spBv1.0/${GROUP}/DDATA/${NODE}/${DEVICE}`;
let problems = 0;
let seq = 2; // continues the DBIRTH's seq 1 across warm-up and the timed run
bench('decode + handle', () => {
  const r = state.handle(topic, ddata[seq++ & 0xff]!, received);
  sink += r.values.length;
  if (r.deadLetters.length > 0 || r.seqGap) problems++;
});
if (problems > 0) throw new Error(`${problems} messages had dead letters or gaps: not the happy path`);
// Keeps the results observable so V8 cannot drop the work.
if (sink < 0) console.log(sink);
