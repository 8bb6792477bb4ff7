import type { Db } from '../db/index.ts';

/** Series ids of sensors, by sensor id (the pipeline's series resolution reads the same table). */
export async function seriesIdsBySensor(db: Db, sensorIds: readonly string[]): Promise<Map<string, number>> {
  if (sensorIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('telemetry.series')
    .select(['id', 'sensorId'])
    .where('sensorId', 'in', sensorIds)
    .execute();
  return new Map(rows.map((r) => [r.sensorId!, r.id]));
}
