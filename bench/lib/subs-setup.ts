/**
 * The subscriptions bench's plant: `machines` machines spread over `lines` lines, one temperature sensor each
 * (`<machine>-TEMP`), one product and one ACTIVE work order per line (so every event has a current work order
 * to resolve), written through the same repositories the subgraphs use. No range rules: no alerts.
 */
import { createBenchDatabase } from './env.ts';

export const subsMachineId = (i: number): string => `SM-${String(i + 1).padStart(4, '0')}`;
export const subsSensorId = (i: number): string => `${subsMachineId(i)}-TEMP`;
export const SUBS_TOPIC = 'bench-subs';

export async function setupSubscriptionsDatabase(name: string, machines: number, lines = 10): Promise<string> {
  const { sql } = await import('kysely');
  const { openDatabase } = await import('../../lib/db/open.ts');
  const prod = await import('../../subgraphs/production/production.repo.ts');
  const { insertSensor } = await import('../../subgraphs/iot/iot.repo.ts');
  const url = await createBenchDatabase(name);
  const db = await openDatabase(url, 10);
  await prod.insertSite(db, { id: 'SUBS-SITE', name: 'Subscriptions bench site' });
  await prod.insertProduct(db, { id: 'SUBS-P', name: 'Bench part', sku: 'SKU-SUBS', standardCycleTimeSeconds: 30 });
  const day = 86_400_000;
  for (let l = 0; l < lines; l++) {
    const lineId = `SUBS-L${l + 1}`;
    await prod.insertLine(db, { id: lineId, siteId: 'SUBS-SITE', name: `Bench line ${l + 1}` });
    await prod.insertWorkOrder(db, {
      number: `WO-SUBS-${l + 1}`,
      lineId,
      productId: 'SUBS-P',
      plannedStart: new Date(Date.now() - day),
      plannedEnd: new Date(Date.now() + day),
      plannedQuantity: 1000,
      status: 'ACTIVE',
    });
  }
  for (let i = 0; i < machines; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, machines - i) }, async (_, k) => {
        const n = i + k;
        await prod.insertMachine(db, {
          id: subsMachineId(n),
          lineId: `SUBS-L${(n % lines) + 1}`,
          name: `Bench machine ${n + 1}`,
        });
        await insertSensor(db, {
          id: subsSensorId(n),
          name: `Bench sensor ${n + 1}`,
          type: 'temperature',
          unit: 'degC',
          machineId: subsMachineId(n),
          protocol: 'MQTT',
          topic: `${SUBS_TOPIC}/${subsSensorId(n)}`,
        });
      }),
    );
  }
  await sql`vacuum analyze`.execute(db);
  await db.destroy();
  return url;
}
