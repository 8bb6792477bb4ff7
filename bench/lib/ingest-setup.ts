/**
 * The ingest bench's database: fresh, migrated by the hub itself (`openDatabase`), with one site, one line,
 * `machines` machines and `sensors` MQTT sensors registered through the repos the subgraphs use (so every
 * sensor has its telemetry.series row, as `insertSensor` creates both), plus the baseline's `raw_json` table.
 */
import { sql } from 'kysely';
import { createBenchDatabase } from './env.ts';

export const TOPIC_PREFIX = 'bench';
export const sensorId = (i: number): string => `S-${String(i + 1).padStart(4, '0')}`;

export interface BenchPlant {
  url: string;
  /** seriesIds[i] = telemetry.series id of sensorId(i). */
  seriesIds: number[];
}

export async function setupIngestDatabase(name: string, sensors: number, machines = 10): Promise<BenchPlant> {
  const { openDatabase } = await import('../../lib/db/open.ts');
  const { insertLine, insertMachine, insertSite } = await import('../../subgraphs/production/production.repo.ts');
  const { insertSensor } = await import('../../subgraphs/iot/iot.repo.ts');
  const url = await createBenchDatabase(name);
  const db = await openDatabase(url, 10);
  await insertSite(db, { id: 'BENCH-SITE', name: 'Bench site' });
  await insertLine(db, { id: 'BENCH-LINE', siteId: 'BENCH-SITE', name: 'Bench line' });
  for (let m = 0; m < machines; m++)
    await insertMachine(db, { id: `BENCH-M${m + 1}`, lineId: 'BENCH-LINE', name: `Bench machine ${m + 1}` });
  // One transaction per sensor (what the API does); ten at a time to keep setup short.
  for (let i = 0; i < sensors; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, sensors - i) }, (_, k) => {
        const n = i + k;
        return insertSensor(db, {
          id: sensorId(n),
          name: `Bench sensor ${n + 1}`,
          type: 'temperature',
          unit: 'degC',
          machineId: `BENCH-M${(n % machines) + 1}`,
          protocol: 'MQTT',
          topic: `${TOPIC_PREFIX}/${sensorId(n)}`,
        });
      }),
    );
  }
  // The baseline's table, as a DBA would make it: no key, no index.
  await sql`create table public.raw_json (doc jsonb)`.execute(db);
  const rows = await db
    .selectFrom('telemetry.series')
    .select(['id', 'sensorId'])
    .where('sensorId', 'is not', null)
    .execute();
  const bySensor = new Map(rows.map((r) => [r.sensorId!, r.id]));
  const seriesIds = Array.from({ length: sensors }, (_, i) => {
    const id = bySensor.get(sensorId(i));
    if (id === undefined) throw new Error(`no telemetry.series row for ${sensorId(i)}`);
    return id;
  });
  await sql`vacuum analyze`.execute(db);
  // Closed: idle connections of ours would otherwise be counted as the consumer's Postgres backends.
  await db.destroy();
  return { url, seriesIds };
}
