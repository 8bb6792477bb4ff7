import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadErpConfig } from '../../lib/config/erp.ts';
import { SapOdataConnector } from '../../lib/connectors/erp/sap.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { makeSapOrders, startSap, type FakeSap } from '../fakes/sap-odata.ts';

let hub: TestHub;
let sap: FakeSap;
let eng: string;
let dir: string;
const T0 = new Date(Date.UTC(2030, 2, 1));
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 40 * 86_400_000).toISOString() };
const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from, to: $to) {
  system systemKind status fetched created updated unchanged rejected errors { key message } } }`;
const sync = (line = 'LINE-1') => hub.gql(eng, SYNC, { line, ...RANGE });

beforeAll(async () => {
  sap = await startSap({ serverPageCap: 30 });
  dir = mkdtempSync(join(tmpdir(), 'hub-erp-'));
  writeFileSync(
    join(dir, 'erp.yml'),
    `erp:
  systemType: sap_odata
  name: S4-TEST
  connection:
    baseUrl: ${sap.url}
    auth:
      type: basic
      username: ${sap.user}
      password: \${TEST_SAP_PASSWORD}
    timeoutSeconds: 1
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }
  lineMap: { L01: LINE-1, L02: LINE-2 }
  sync: { autoSyncEnabled: false, batchSize: 64 }
  sap: { plant: '1710', pageSize: 50 }
`,
  );
  process.env.TEST_SAP_PASSWORD = sap.password;
  process.env.HUB_CONFIG_DIR = dir;
  hub = await startTestHub({ seed: true });
  delete process.env.HUB_CONFIG_DIR;
  eng = await hub.token({ role: 'engineer' });
  for (const o of makeSapOrders('L01', 200, T0)) sap.orders.set(String(o.ManufacturingOrder), o);
  for (const o of makeSapOrders('L02', 5, T0, 'FG-VALVE-2', 2_000_000)) sap.orders.set(String(o.ManufacturingOrder), o);
});
afterAll(async () => {
  await hub?.close();
  await sap?.close();
});
beforeEach(() => sap.setMode('ok'));

describe('SAP S/4HANA OData V2 production orders as schedules', () => {
  it('reads every page (the server caps pages at 30 and sends __next), maps dates, times and decimal strings, and re-syncs without writing', async () => {
    const r = await sync();
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.syncSchedules).toMatchObject({ system: 'S4-TEST', systemKind: 'ERP', status: 'SUCCESS', fetched: 200, created: 200, updated: 0 });
    const wo = await sql<{ plannedStart: Date; plannedEnd: Date; plannedQuantity: number; productId: string; status: string; lineId: string }>`
      select planned_start, planned_end, planned_quantity, product_id, status, line_id from production.work_orders where number = '1000003'`.execute(hub.db);
    expect(wo.rows[0]).toEqual({ plannedStart: new Date(T0.getTime() + 3 * 86_400_000 + 6 * 3_600_000), plannedEnd: new Date(T0.getTime() + 3 * 86_400_000 + 14 * 3_600_000), plannedQuantity: 483, productId: 'FG-PUMP-10', status: 'PLANNED', lineId: 'LINE-1' });
    expect((await sync()).body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 200, created: 0, updated: 0, unchanged: 200 });
    // Orders of the other line value stay on their line.
    expect((await sync('LINE-2')).body.data.syncSchedules).toMatchObject({ fetched: 5, created: 5 });
  });

  it('pages by $skip when the server honours $top (no __next), and picks up a confirmation as ACTIVE with its yield', async () => {
    sap.serverPageCap = 5000;
    const o = sap.orders.get('1000010')!;
    o.MfgOrderConfirmedYieldQty = '120.000';
    o.OrderIsPartiallyConfirmed = 'X';
    const r = await sync();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 200, created: 0, updated: 1 });
    const wo = await sql<{ status: string; actualQuantity: number }>`select status, actual_quantity from production.work_orders where number = '1000010'`.execute(hub.db);
    expect(wo.rows[0]).toEqual({ status: 'ACTIVE', actualQuantity: 120 });
    sap.serverPageCap = 30;
  });

  it('turns the SAP error body into a typed error in the history', async () => {
    sap.setMode('500');
    const r = await sync();
    expect(r.body.data.syncSchedules.status).toBe('FAILED');
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(/answered 500: Runtime error in the backend/);
  });

  it('stops on a repeating __next and on an empty page that promises more, and on a malformed body', async () => {
    sap.setMode('repeatPage');
    const rep = await sync();
    expect(rep.body.data.syncSchedules.status).toBe('PARTIAL');
    expect(rep.body.data.syncSchedules.errors.at(-1).message).toMatch(/repeats/);
    sap.setMode('emptyPage');
    expect((await sync()).body.data.syncSchedules.errors.at(-1).message).toMatch(/empty but more pages are promised/);
    sap.setMode('malformed');
    expect((await sync()).body.data.syncSchedules).toMatchObject({ status: 'FAILED' });
    const n = await sql<{ n: number }>`select count(*)::int as n from production.work_orders where line_id = 'LINE-1' and source = 'S4-TEST'`.execute(hub.db);
    expect(n.rows[0]!.n).toBe(200);
  });
});

describe('SAP material master and goods issues', () => {
  it('syncs the material master with descriptions, weights as decimals, and re-syncs without writing', async () => {
    sap.products.set('FG-PUMP-10', { Product: 'FG-PUMP-10', ProductType: 'FERT', BaseUnit: 'EA', ProductGroup: 'PUMPS', GrossWeight: '10.500', NetWeight: '9.750', WeightUnit: 'KG', IsMarkedForDeletion: false, LastChangeDateTime: '/Date(1583073519000+0000)/', to_Description: { results: [{ Language: 'DE', ProductDescription: 'Pumpe' }, { Language: 'EN', ProductDescription: 'Pump 10' }] } });
    sap.products.set('CASTING-7', { Product: 'CASTING-7', ProductType: 'HALB', BaseUnit: 'PC', GrossWeight: '2.000', NetWeight: '', WeightUnit: 'KG', IsMarkedForDeletion: false, to_Description: { results: [] } });
    const M = 'mutation { syncMaterials { status fetched created updated unchanged } }';
    expect((await hub.gql(eng, M)).body.data.syncMaterials).toEqual({ status: 'SUCCESS', fetched: 2, created: 2, updated: 0, unchanged: 0 });
    expect((await hub.gql(eng, M)).body.data.syncMaterials).toEqual({ status: 'SUCCESS', fetched: 2, created: 0, updated: 0, unchanged: 2 });
    const q = await hub.gql(eng, '{ materials(search: "PUMP") { nodes { id description type baseUnit group grossWeight netWeight weightUnit sourceSystem sourceChangedAt } } }');
    expect(q.body.data.materials.nodes).toEqual([{ id: 'FG-PUMP-10', description: 'Pump 10', type: 'FERT', baseUnit: 'EA', group: 'PUMPS', grossWeight: 10.5, netWeight: 9.75, weightUnit: 'KG', sourceSystem: 'S4-TEST', sourceChangedAt: '2020-03-01T14:38:39.000Z' }]);
  });

  it('posts a goods issue with the CSRF token and cookie, fetches a new token once on 403, and reads consumption back', async () => {
    const c = new SapOdataConnector(loadErpConfig(dir, { TEST_SAP_PASSWORD: sap.password })!);
    const post = (qty: number) => c.postConsumption({ workOrderNumber: '1000001', materialId: 'CASTING-7', quantity: qty, unit: 'PC', lot: 'B-77', postedAt: T0 });
    const a = await post(3);
    expect(a.documentId).toMatch(/^2030\/49/);
    await post(4);
    expect(c.csrfFetches).toBe(1);
    sap.expireCsrf();
    const postsBefore = sap.posts;
    await post(5);
    expect(c.csrfFetches).toBe(2);
    expect(sap.posts - postsBefore).toBe(2); // refused once, then accepted with the fresh token
    expect(sap.documents.filter((d) => d.ManufacturingOrder === '1000001').map((d) => d.QuantityInEntryUnit)).toEqual(['3.000', '4.000', '5.000']);

    const id = (await sql<{ id: string }>`select id from production.work_orders where number = '1000001'`.execute(hub.db)).rows[0]!.id;
    const r = await hub.gql(eng, `mutation($id: ID!) { syncMaterialConsumption(workOrderId: $id, system: ERP) { status fetched created } }`, { id });
    expect(r.body.data.syncMaterialConsumption).toEqual({ status: 'SUCCESS', fetched: 3, created: 3 });
    const q = await hub.gql(eng, `query($id: ID!) { materialConsumption(workOrderId: $id) { nodes { materialId quantity unit lot sourceSystem } } }`, { id });
    expect(q.body.data.materialConsumption.nodes.map((n: any) => n.quantity)).toEqual([3, 4, 5]);
  });

  it('never resends a goods issue after a failure (not idempotent), and the second CSRF refusal is an error', async () => {
    const c = new SapOdataConnector(loadErpConfig(dir, { TEST_SAP_PASSWORD: sap.password })!);
    sap.setMode('500');
    const before = sap.calls;
    await expect(c.postConsumption({ workOrderNumber: '1000002', materialId: 'CASTING-7', quantity: 1, unit: 'PC', lot: null, postedAt: T0 })).rejects.toMatchObject({ extensions: { code: 'UPSTREAM_UNAVAILABLE' } });
    // The CSRF fetch (a GET) is retried; nothing else is sent twice.
    expect(sap.calls - before).toBe(2);
  });
});
