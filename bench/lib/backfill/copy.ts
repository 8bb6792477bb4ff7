/**
 * The backfill bench's baseline, the limit: the same points written straight into the same table
 * (telemetry.readings, emptied first) with ONE binary COPY, encoded by the hub's own encoder (readings-binary.ts)
 * in this process while Postgres takes the stream. No HTTP, no JSON, no pipeline, no rollups, no context.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { COPY_COLUMNS, encodeReadings } from '../../../lib/telemetry/readings-binary.ts';
import { SOURCE_CODES } from '../../../lib/telemetry/sources.ts';
import type { StoredReading } from '../../../lib/telemetry/types.ts';
import { cpuWindow, postgresPids, type CpuWindow } from '../proc-stats.ts';
import { pointValue, STEP_MS, type Shape } from './common.ts';

/** encodeReadings writes a whole COPY stream per call: its 19-byte header (signature, flags, extension length)… */
const HEADER = 19;
/** …and its 2-byte trailer; the chunks of one stream keep the first header and the last trailer only. */
const TRAILER = 2;
const CHUNK_ROWS = 10_000;

export interface CopyResult {
  seconds: number;
  rows: number;
  cpu: CpuWindow;
}

/**
 * Every point of `shape`, in the order the hub reads them (100 tags at a time, `maxCount` values a tag a page),
 * as rows of `seriesIds[tag]`, in one COPY from a fresh connection. Timed from the COPY's start to its end
 * (committed: it runs alone, in autocommit).
 */
export async function copyBaseline(
  url: string,
  dbName: string,
  shape: Shape,
  seriesIds: number[],
  maxCount: number,
  groups: () => Promise<Record<string, number[]>>,
): Promise<CopyResult> {
  const client = new pg.Client({ connectionString: url, application_name: 'oee-bench-copy' });
  await client.connect();
  try {
    const t0 = performance.now();
    const meter = await cpuWindow(async () => ({ ...(await groups()), ...pgOf(await postgresPids(dbName)) }));
    const stream = client.query(copyFrom(`copy telemetry.readings (${COPY_COLUMNS}) from stdin (format binary)`));
    const done = new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('finish', () => resolve());
    });
    let rows = 0;
    let first = true;
    let chunk: StoredReading[] = [];
    const flush = async (last: boolean) => {
      const data = encodeReadings(chunk);
      chunk = [];
      const part = data.subarray(first ? 0 : HEADER, last ? data.length : data.length - TRAILER);
      first = false;
      if (!stream.write(part)) await new Promise((r) => stream.once('drain', r));
      meter.tick();
    };
    const source = SOURCE_CODES.HISTORIAN;
    for (let g = 0; g < shape.tags; g += 100)
      for (let k0 = 0; k0 < shape.values; k0 += maxCount)
        for (let i = g; i < Math.min(g + 100, shape.tags); i++)
          for (let k = k0; k < Math.min(k0 + maxCount, shape.values); k++) {
            chunk.push({
              seriesId: seriesIds[i]!,
              ts: new Date(shape.start + k * STEP_MS),
              value: pointValue(i, k),
              quality: 100,
              source,
            });
            rows++;
            if (chunk.length === CHUNK_ROWS) await flush(rows === shape.tags * shape.values);
          }
    if (chunk.length || first) await flush(true);
    stream.end();
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = await meter.end();
    return { seconds, rows, cpu };
  } finally {
    await client.end();
  }
}

/** The Postgres processes of a window: the database's backends, and the shared writers (WAL, checkpoints). */
export function pgOf(p: Awaited<ReturnType<typeof postgresPids>>): Record<string, number[]> {
  return { postgres: p.backends, 'pg background': p.background };
}
