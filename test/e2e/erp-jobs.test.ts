import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { startSap, type FakeSap } from '../fakes/sap-odata.ts';

/** The ERP material master on a schedule of its own (docs/mes-erp.md, Durable jobs), run by the hub's job runner. */
let hub: TestHub;
let sap: FakeSap;

beforeAll(async () => {
  sap = await startSap();
  sap.products.set('FG-PUMP-10', {
    Product: 'FG-PUMP-10',
    ProductType: 'FERT',
    BaseUnit: 'EA',
    ProductGroup: 'PUMPS',
    GrossWeight: '10.500',
    NetWeight: '9.750',
    WeightUnit: 'KG',
    IsMarkedForDeletion: false,
    to_Description: { results: [{ Language: 'EN', ProductDescription: 'Pump 10' }] },
  });
  sap.products.set('CASTING-7', {
    Product: 'CASTING-7',
    ProductType: 'HALB',
    BaseUnit: 'PC',
    GrossWeight: '2.000',
    WeightUnit: 'KG',
    IsMarkedForDeletion: false,
    to_Description: { results: [{ Language: 'EN', ProductDescription: 'Casting 7' }] },
  });
  const dir = mkdtempSync(join(tmpdir(), 'hub-erp-jobs-'));
  // Materials every minute; the line's schedule once a day (at midnight UTC: no such run falls into the test).
  writeFileSync(
    join(dir, 'erp.yml'),
    `erp:
  systemType: sap_odata
  name: S4-JOBS
  connection:
    baseUrl: ${sap.url}
    auth:
      type: basic
      username: ${sap.user}
      password: \${TEST_SAP_PASSWORD}
    timeoutSeconds: 2
  lineMap: { L01: LINE-1 }
  sync: { scheduleSyncIntervalMinutes: 1440, materialSyncIntervalMinutes: 1 }
  sap: { plant: '1710' }
`,
  );
  hub = await startTestHub({ seed: true, config: { dir, env: { TEST_SAP_PASSWORD: sap.password } } });
});
afterAll(async () => {
  await hub?.close();
  await sap?.close();
});

describe('the ERP material master on its own schedule', () => {
  it('has a cron of its own (materialSyncIntervalMinutes), beside the line schedule', async () => {
    const rows = await sql<{
      name: string;
      cron: string;
    }>`select name, cron from pgboss.schedule order by name`.execute(hub.db);
    expect(rows.rows).toEqual([
      { name: 'erp-material-sync', cron: '*/1 * * * *' },
      { name: 'schedule-sync.LINE-1', cron: '0 */24 * * *' },
    ]);
  });

  it('syncs the material master when its cron fires, recorded as SCHEDULED and audited as the scheduler', async () => {
    const eng = await hub.token({ role: 'engineer' });
    // Nobody asks for it: the cron fires within the minute (the job runner checks its crons every 30 s).
    const runs = await until(
      'a scheduled material sync',
      async () =>
        (
          await hub.gql(
            eng,
            `{ syncRuns(filter: { kind: [MATERIALS] }, first: 10) { nodes { system trigger status fetched created
              requestedBy } } }`,
          )
        ).body.data.syncRuns.nodes.filter((n: any) => n.status !== 'RUNNING'),
      (n) => n.length > 0,
      150_000,
      1000,
    );
    expect(runs.at(-1)).toEqual({
      system: 'S4-JOBS',
      trigger: 'SCHEDULED',
      status: 'SUCCESS',
      fetched: 2,
      created: 2,
      requestedBy: 'system:scheduler',
    });
    const m = await hub.gql(eng, '{ materials(search: "PUMP") { nodes { id description baseUnit sourceSystem } } }');
    expect(m.body.data.materials.nodes).toEqual([
      { id: 'FG-PUMP-10', description: 'Pump 10', baseUnit: 'EA', sourceSystem: 'S4-JOBS' },
    ]);
    const admin = await hub.token({ role: 'admin' });
    const a = await hub.gql(
      admin,
      '{ auditLog(filter: { operation: "sync.materials" }, first: 10) { nodes { actor outcome } } }',
    );
    expect(a.body.data.auditLog.nodes.at(-1)).toEqual({ actor: 'system:scheduler', outcome: 'SUCCESS' });
  }, 180_000);
});
