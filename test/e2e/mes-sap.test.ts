import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadErpConfig } from '../../lib/config/erp.ts';
import { SapOdataConnector } from '../../lib/connectors/erp/sap.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { makeConfirmations, makeSapOrders, startSap, type FakeSap } from '../fakes/sap-odata.ts';

let hub: TestHub;
let sap: FakeSap;
let eng: string;
let dir: string;
const T0 = new Date(Date.UTC(2030, 2, 1));
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 40 * 86_400_000).toISOString() };
const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from,
  to: $to) {
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
  lineMap: { L01: LINE-1, L02: LINE-2, WC-L01: LINE-1, WC-L02: LINE-2 }
  sync: { autoSyncEnabled: false, batchSize: 64 }
  sap:
    plant: '1710'
    pageSize: 50
    labourRates: { WC-L01: { costCenter: CC-4711, ratePerHour: 42.5, currency: EUR } }
`,
  );
  hub = await startTestHub({ seed: true, config: { dir, env: { TEST_SAP_PASSWORD: sap.password } } });
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
  it(`reads every page (the server caps pages at 30 and sends __next), maps dates, times and decimal strings, \
and re-syncs without writing`, async () => {
    const r = await sync();
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.syncSchedules).toMatchObject({
      system: 'S4-TEST',
      systemKind: 'ERP',
      status: 'SUCCESS',
      fetched: 200,
      created: 200,
      updated: 0,
    });
    const wo = await sql<{
      plannedStart: Date;
      plannedEnd: Date;
      plannedQuantity: number;
      productId: string;
      status: string;
      lineId: string;
    }>`
      select planned_start, planned_end, planned_quantity, product_id, status,
        line_id from production.work_orders where number = '1000003'`.execute(hub.db);
    expect(wo.rows[0]).toEqual({
      plannedStart: new Date(T0.getTime() + 3 * 86_400_000 + 6 * 3_600_000),
      plannedEnd: new Date(T0.getTime() + 3 * 86_400_000 + 14 * 3_600_000),
      plannedQuantity: 483,
      productId: 'FG-PUMP-10',
      status: 'PLANNED',
      lineId: 'LINE-1',
    });
    expect((await sync()).body.data.syncSchedules).toMatchObject({
      status: 'SUCCESS',
      fetched: 200,
      created: 0,
      updated: 0,
      unchanged: 200,
    });
    // Orders of the other line value stay on their line.
    expect((await sync('LINE-2')).body.data.syncSchedules).toMatchObject({ fetched: 5, created: 5 });
  });

  it(`pages by $skip when the server honours $top (no __next), \
and picks up a confirmation as ACTIVE with its yield`, async () => {
    sap.serverPageCap = 5000;
    const o = sap.orders.get('1000010')!;
    o.MfgOrderConfirmedYieldQty = '120.000';
    o.OrderIsPartiallyConfirmed = 'X';
    const r = await sync();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 200, created: 0, updated: 1 });
    const wo = await sql<{
      status: string;
      actualQuantity: number;
    }>`select status, actual_quantity from production.work_orders where number = '1000010'`.execute(hub.db);
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
    const n = await sql<{
      n: number;
    }>`select count(*)::int as n from production.work_orders where line_id = 'LINE-1' and source = 'S4-TEST'`.execute(
      hub.db,
    );
    expect(n.rows[0]!.n).toBe(200);
  });
});

describe('SAP material master and goods issues', () => {
  it('syncs the material master with descriptions, weights as decimals, and re-syncs without writing', async () => {
    sap.products.set('FG-PUMP-10', {
      Product: 'FG-PUMP-10',
      ProductType: 'FERT',
      BaseUnit: 'EA',
      ProductGroup: 'PUMPS',
      GrossWeight: '10.500',
      NetWeight: '9.750',
      WeightUnit: 'KG',
      IsMarkedForDeletion: false,
      LastChangeDateTime: '/Date(1583073519000+0000)/',
      to_Description: {
        results: [
          { Language: 'DE', ProductDescription: 'Pumpe' },
          { Language: 'EN', ProductDescription: 'Pump 10' },
        ],
      },
    });
    sap.products.set('CASTING-7', {
      Product: 'CASTING-7',
      ProductType: 'HALB',
      BaseUnit: 'PC',
      GrossWeight: '2.000',
      NetWeight: '',
      WeightUnit: 'KG',
      IsMarkedForDeletion: false,
      to_Description: { results: [] },
    });
    const M = 'mutation { syncMaterials { status fetched created updated unchanged } }';
    expect((await hub.gql(eng, M)).body.data.syncMaterials).toEqual({
      status: 'SUCCESS',
      fetched: 2,
      created: 2,
      updated: 0,
      unchanged: 0,
    });
    expect((await hub.gql(eng, M)).body.data.syncMaterials).toEqual({
      status: 'SUCCESS',
      fetched: 2,
      created: 0,
      updated: 0,
      unchanged: 2,
    });
    const q = await hub.gql(
      eng,
      `{ materials(search: "PUMP") { nodes { id description type baseUnit group grossWeight netWeight weightUnit
        sourceSystem sourceChangedAt } } }`,
    );
    expect(q.body.data.materials.nodes).toEqual([
      {
        id: 'FG-PUMP-10',
        description: 'Pump 10',
        type: 'FERT',
        baseUnit: 'EA',
        group: 'PUMPS',
        grossWeight: 10.5,
        netWeight: 9.75,
        weightUnit: 'KG',
        sourceSystem: 'S4-TEST',
        sourceChangedAt: '2020-03-01T14:38:39.000Z',
      },
    ]);
  });

  it(`posts a goods issue with the CSRF token and cookie, fetches a new token once on 403, \
and reads consumption back`, async () => {
    const c = new SapOdataConnector(loadErpConfig(dir, { TEST_SAP_PASSWORD: sap.password })!);
    const post = (qty: number) =>
      c.postConsumption({
        workOrderNumber: '1000001',
        materialId: 'CASTING-7',
        quantity: qty,
        unit: 'PC',
        lot: 'B-77',
        postedAt: T0,
      });
    const a = await post(3);
    expect(a.documentId).toMatch(/^2030\/49/);
    await post(4);
    expect(c.csrfFetches).toBe(1);
    sap.expireCsrf();
    const postsBefore = sap.posts;
    await post(5);
    expect(c.csrfFetches).toBe(2);
    expect(sap.posts - postsBefore).toBe(2); // refused once, then accepted with the fresh token
    expect(sap.documents.filter((d) => d.ManufacturingOrder === '1000001').map((d) => d.QuantityInEntryUnit)).toEqual([
      '3.000',
      '4.000',
      '5.000',
    ]);

    const id = (
      await sql<{ id: string }>`select id from production.work_orders where number = '1000001'`.execute(hub.db)
    ).rows[0]!.id;
    const r = await hub.gql(
      eng,
      `mutation($id: ID!) { syncMaterialConsumption(workOrderId: $id, system: ERP) { status fetched created } }`,
      { id },
    );
    expect(r.body.data.syncMaterialConsumption).toEqual({ status: 'SUCCESS', fetched: 3, created: 3 });
    const q = await hub.gql(
      eng,
      `query($id: ID!) { materialConsumption(workOrderId: $id) { nodes { materialId quantity unit lot sourceSystem } }
        }`,
      { id },
    );
    expect(q.body.data.materialConsumption.nodes.map((n: any) => n.quantity)).toEqual([3, 4, 5]);
  });

  it(`never resends a goods issue after a failure (not idempotent), \
and the second CSRF refusal is an error`, async () => {
    const c = new SapOdataConnector(loadErpConfig(dir, { TEST_SAP_PASSWORD: sap.password })!);
    sap.setMode('500');
    const before = sap.calls;
    await expect(
      c.postConsumption({
        workOrderNumber: '1000002',
        materialId: 'CASTING-7',
        quantity: 1,
        unit: 'PC',
        lot: null,
        postedAt: T0,
      }),
    ).rejects.toMatchObject({ extensions: { code: 'UPSTREAM_UNAVAILABLE' } });
    // The CSRF fetch (a GET) is retried; nothing else is sent twice.
    expect(sap.calls - before).toBe(2);
  });
});

describe('SAP labour costs from production order confirmations', () => {
  const LABOUR = `mutation($from: DateTime!, $to: DateTime!) { syncLabourCosts(from: $from, to: $to) { kind status
    fetched created updated unchanged rejected errors { key message } } }`;
  const day = (n: number) => new Date(T0.getTime() + n * 86_400_000).toISOString();

  it(`syncs confirmed hours over every page (__next), prices them by work centre, converts minutes, \
and re-syncs without writing`, async () => {
    for (const c of makeConfirmations('WC-L01', 40, T0)) sap.confirmations.set(`${c.ConfirmationGroup}/1`, c);
    for (const c of makeConfirmations('WC-L02', 2, T0, { group: 60_000, unit: 'MIN', hours: 90 }))
      sap.confirmations.set(`${c.ConfirmationGroup}/1`, c);
    // Outside the range, and a reversed confirmation: not asked for.
    for (const c of makeConfirmations('WC-L01', 1, new Date(T0.getTime() + 30 * 86_400_000), { group: 70_000 }))
      sap.confirmations.set(`${c.ConfirmationGroup}/1`, c);
    const rev = makeConfirmations('WC-L01', 1, T0, { group: 80_000 })[0]!;
    sap.confirmations.set('80000/1', { ...rev, IsReversed: true });

    const r = await hub.gql(eng, LABOUR, { from: day(0), to: day(20) });
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.syncLabourCosts).toMatchObject({
      kind: 'LABOUR',
      status: 'SUCCESS',
      fetched: 42,
      created: 42,
      updated: 0,
      rejected: 0,
    });
    const again = await hub.gql(eng, LABOUR, { from: day(0), to: day(20) });
    expect(again.body.data.syncLabourCosts).toMatchObject({
      status: 'SUCCESS',
      fetched: 42,
      created: 0,
      updated: 0,
      unchanged: 42,
    });

    const Q = `query($f: LabourCostFilter) { labourCosts(filter: $f, first: 100) { totalCount nodes { externalId
      costCenter workCenter line { id } workOrderNumber workDate hours ratePerHour cost currency } } }`;
    const l1 = await hub.gql(eng, Q, { f: { lineId: 'LINE-1' } });
    expect(l1.body.data.labourCosts.totalCount).toBe(40);
    expect(l1.body.data.labourCosts.nodes[0]).toEqual({
      externalId: '50000/1',
      costCenter: 'CC-4711',
      workCenter: 'WC-L01',
      line: { id: 'LINE-1' },
      workOrderNumber: '1000000',
      workDate: T0.toISOString().slice(0, 10),
      hours: 7.5,
      ratePerHour: 42.5,
      cost: 318.75,
      currency: 'EUR',
    });
    // No rate for WC-L02: its hours (90 MIN = 1.5 h) are kept, the money is unknown; the cost centre is the work
    // centre.
    const l2 = await hub.gql(eng, Q, { f: { lineId: 'LINE-2' } });
    expect(l2.body.data.labourCosts.nodes.map((n: any) => [n.hours, n.cost, n.costCenter])).toEqual([
      [1.5, null, 'WC-L02'],
      [1.5, null, 'WC-L02'],
    ]);
    const byCc = await hub.gql(eng, Q, {
      f: { costCenter: 'CC-4711', from: day(1).slice(0, 10), to: day(3).slice(0, 10) },
    });
    expect(byCc.body.data.labourCosts.totalCount).toBe(4); // days 1 and 2 of the 20-day cycle, twice each
    // A line-scoped token sees its lines' bookings only.
    const scoped = await hub.token({ role: 'viewer', lines: ['LINE-2'] });
    expect((await hub.gql(scoped, Q, {})).body.data.labourCosts.totalCount).toBe(2);

    // A changed confirmation updates its booking, once.
    sap.confirmations.get('50001/1')!.OpConfirmedWorkQuantity1 = '8.000';
    const changed = await hub.gql(eng, LABOUR, { from: day(0), to: day(20) });
    expect(changed.body.data.syncLabourCosts).toMatchObject({ created: 0, updated: 1, unchanged: 41 });
  });

  it('reports a confirmation it cannot read as a record error (PARTIAL) and refuses to <= from', async () => {
    const bad = makeConfirmations('WC-L01', 1, T0, { group: 90_000, unit: 'DAY' })[0]!;
    sap.confirmations.set('90000/1', bad);
    const r = await hub.gql(eng, LABOUR, { from: day(0), to: day(20) });
    expect(r.body.data.syncLabourCosts).toMatchObject({
      status: 'PARTIAL',
      rejected: 1,
      errors: [{ key: '90000/1', message: expect.stringMatching(/OpWorkQuantityUnit1 "DAY"/) }],
    });
    sap.confirmations.delete('90000/1');
    const backwards = await hub.gql(eng, LABOUR, { from: day(2), to: day(1) });
    expect(backwards.body.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'to' });
  });
});

describe('goods issues through the gateway (reportMaterialConsumption)', () => {
  const REPORT = `mutation($id: ID!, $m: String!, $q: Float!, $key: String) { reportMaterialConsumption(workOrderId:
    $id, materialId: $m, quantity: $q, unit: "PC", lot: "B-9", idempotencyKey: $key) {
    materialId quantity unit lot sourceSystem workOrder { number } } }`;
  const woId = async (n: string) =>
    (await sql<{ id: string }>`select id from production.work_orders where number = ${n}`.execute(hub.db)).rows[0]!.id;

  it(`posts with a fetched CSRF token, fetches a new one exactly once after a 403, \
and a retry with the key posts nothing`, async () => {
    const id = await woId('1000010');
    const op = await hub.token({ role: 'operator' });
    const fetches = sap.csrfFetches;
    const a = await hub.gql(op, REPORT, { id, m: 'CASTING-9', q: 2.5, key: 'gi-1000010-a' });
    expect(a.body.errors).toBeUndefined();
    expect(a.body.data.reportMaterialConsumption).toEqual({
      materialId: 'CASTING-9',
      quantity: 2.5,
      unit: 'PC',
      lot: 'B-9',
      sourceSystem: 'S4-TEST',
      workOrder: { number: '1000010' },
    });
    expect(sap.csrfFetches - fetches).toBeLessThanOrEqual(1); // a token from an earlier write may still be good

    sap.expireCsrf();
    const fetchesBefore = sap.csrfFetches;
    const postsBefore = sap.posts;
    const b = await hub.gql(op, REPORT, { id, m: 'CASTING-9', q: 1, key: 'gi-1000010-b' });
    expect(b.body.errors).toBeUndefined();
    expect(sap.csrfFetches - fetchesBefore).toBe(1);
    expect(sap.posts - postsBefore).toBe(2); // 403 Required, then accepted with the fresh token

    // The same key again: the recorded consumption, nothing posted. Another request with it: CONFLICT.
    const again = await hub.gql(op, REPORT, { id, m: 'CASTING-9', q: 1, key: 'gi-1000010-b' });
    expect(again.body.data.reportMaterialConsumption.quantity).toBe(1);
    expect(sap.posts - postsBefore).toBe(2);
    expect(
      (await hub.gql(op, REPORT, { id, m: 'CASTING-9', q: 3, key: 'gi-1000010-b' })).body.errors[0].extensions.code,
    ).toBe('CONFLICT');
    expect(sap.documents.filter((d) => d.ManufacturingOrder === '1000010').map((d) => d.QuantityInEntryUnit)).toEqual([
      '2.500',
      '1.000',
    ]);

    // Synced back from SAP, the posted issues are the same records (no duplicates).
    const sync = await hub.gql(
      eng,
      `mutation($id: ID!) { syncMaterialConsumption(workOrderId: $id, system: ERP) { status fetched created updated }
        }`,
      { id },
    );
    expect(sync.body.data.syncMaterialConsumption).toEqual({ status: 'SUCCESS', fetched: 2, created: 0, updated: 0 });
    const admin = await hub.token({ role: 'admin' });
    const audit = await hub.gql(
      admin,
      `{ auditLog(filter: { operation: "reportMaterialConsumption" }, first: 20) { nodes { outcome target } } }`,
    );
    expect(audit.body.data.auditLog.nodes.map((n: any) => n.outcome).sort()).toEqual([
      'FAILURE',
      'SUCCESS',
      'SUCCESS',
      'SUCCESS',
    ]);
  });

  it(`turns SAP's error body into a typed error, \
frees the key (nothing was posted) and checks role and line scope`, async () => {
    const id = await woId('1000011');
    sap.refusedMaterials.set('CASTING-X', {
      code: 'M7/021',
      message: 'Deficit of SL Unrestricted-use 5 PC : CASTING-X 1710 0001',
    });
    const r = await hub.gql(eng, REPORT, { id, m: 'CASTING-X', q: 5, key: 'gi-1000011-a' });
    expect(r.body.errors[0].message).toMatch(/answered 400: Deficit of SL Unrestricted-use/);
    expect(r.body.errors[0].extensions).toMatchObject({
      code: 'UPSTREAM_BAD_RESPONSE',
      system: 'S4-TEST',
      status: 400,
      upstreamCode: 'M7/021',
      transactionId: expect.stringMatching(/^[0-9A-F]{32}$/),
    });
    sap.refusedMaterials.delete('CASTING-X');
    const retry = await hub.gql(eng, REPORT, { id, m: 'CASTING-X', q: 5, key: 'gi-1000011-a' });
    expect(retry.body.errors).toBeUndefined();

    const viewer = await hub.token({ role: 'viewer' });
    expect((await hub.gql(viewer, REPORT, { id, m: 'CASTING-9', q: 1 })).body.errors[0].extensions.code).toBe(
      'FORBIDDEN',
    );
    const other = await hub.token({ role: 'operator', lines: ['LINE-2'] });
    expect((await hub.gql(other, REPORT, { id, m: 'CASTING-9', q: 1 })).body.errors[0].extensions.code).toBe(
      'FORBIDDEN',
    );
    expect((await hub.gql(eng, REPORT, { id, m: 'CASTING-9', q: 0 })).body.errors[0].extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument: 'quantity',
    });
  });

  it('refuses a retry of a goods issue whose outcome is unknown (timeout) instead of posting it twice', async () => {
    const id = await woId('1000012');
    await hub.gql(eng, REPORT, { id, m: 'CASTING-9', q: 1, key: 'gi-1000012-warm' }); // a CSRF token in hand
    sap.setMode('timeout');
    const r = await hub.gql(eng, REPORT, { id, m: 'CASTING-9', q: 4, key: 'gi-1000012-a' });
    expect(r.body.errors[0].extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    sap.setMode('ok');
    const retry = await hub.gql(eng, REPORT, { id, m: 'CASTING-9', q: 4, key: 'gi-1000012-a' });
    expect(retry.body.errors[0].extensions).toMatchObject({ code: 'CONFLICT', state: 'UNCERTAIN' });
  });
});

describe('SAP schedules with a flaky server', () => {
  it('converges with SAP failing 30% of calls: PARTIAL or FAILED runs, then SUCCESS, no duplicates', async () => {
    for (const o of makeSapOrders('L02', 120, T0, 'FG-VALVE-2', 3_000_000))
      sap.orders.set(String(o.ManufacturingOrder), o);
    sap.setMode('flaky30', 4);
    const statuses: string[] = [];
    for (let i = 0; i < 30 && statuses.at(-1) !== 'SUCCESS'; i++)
      statuses.push((await sync('LINE-2')).body.data.syncSchedules.status);
    expect(statuses.at(-1)).toBe('SUCCESS');
    expect(statuses.length).toBeGreaterThan(1);
    expect(statuses.slice(0, -1).every((s) => s === 'PARTIAL' || s === 'FAILED')).toBe(true);
    // Every one of the fake's 120 orders, once (number is unique, so a count is the whole check).
    const n = await sql<{ n: number }>`select count(*)::int as n from production.work_orders where number like '3%'
      and length(number) = 7`.execute(hub.db);
    expect(n.rows[0]!.n).toBe(120);
  });

  it('answers a timeout within the deadline as a FAILED run', async () => {
    sap.setMode('timeout');
    const r = await sync('LINE-2');
    expect(r.body.data.syncSchedules.status).toBe('FAILED');
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(/failed/);
  });

  it('cuts an A_ProductionOrder_2 page that stalls mid-body at the 1 s deadline, retries it, then FAILED', async () => {
    sap.setMode('stallBody');
    const from = sap.trace.length;
    const started = performance.now();
    const r = await sync();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(
      /S4-TEST: GET \/sap\/opu\/odata\/sap\/API_PRODUCTION_ORDER_2_SRV\/A_ProductionOrder_2 failed: /,
    );
    expect(sap.trace.slice(from).map((c) => c.answered)).toEqual(['stalled', 'stalled']);
    // Both attempts (maxAttempts 2) waited out their 1 s deadline, and no longer.
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(2 * 1000);
    expect(elapsed).toBeLessThan(5000);
  });

  it('retries a 429 after its Retry-After, capped at retry.maxDelayMs (50 ms here), and reads every page', async () => {
    sap.setMode('status', { status: 429, retryAfter: '1', times: 1 });
    const from = sap.trace.length;
    expect((await sync()).body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 200 });
    const calls = sap.trace.slice(from);
    // 200 orders at the server's 30 a page: 7 pages, the first one asked twice.
    expect(calls.map((c) => c.answered)).toEqual([429, 200, 200, 200, 200, 200, 200, 200]);
    // Backoff alone waits 5-10 ms here (baseDelayMs 10, jittered); Retry-After asks 1 s, which the cap makes 50 ms.
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeGreaterThanOrEqual(45);
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeLessThan(900);
  });
});
