import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadMesConfig } from '../../lib/config/mes.ts';
import { createMesConnector } from '../../lib/connectors/index.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { makeB2mmlOrders, startSoapMes, type FakeSoapMes } from '../fakes/mes-soap.ts';

let hub: TestHub;
let mes: FakeSoapMes;
let eng: string;
let dir: string;
const T0 = new Date(Date.UTC(2030, 5, 1));
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 30 * 86_400_000).toISOString() };
const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from,
  to: $to) {
  id system systemKind status fetched created updated unchanged rejected errorCount errors { key message } durationMs
  } }`;
const sync = (line = 'LINE-1') => hub.gql(eng, SYNC, { line, ...RANGE });
/** The error code the audit entry of a sync run names (the typed error the run ended with). */
const auditedErrorCode = async (runId: string) => {
  const admin = await hub.token({ role: 'admin' });
  const a = await hub.gql(
    admin,
    `{ auditLog(filter: { operation: "sync.schedules" }, first: 20) { nodes { errorCode details } } }`,
  );
  return a.body.data.auditLog.nodes.find((n: any) => n.details.runId === runId)?.errorCode;
};
const count = async (prefix: string) =>
  (
    await sql<{
      n: number;
    }>`select count(*)::int as n from production.work_orders where number like ${`${prefix}%`}`.execute(hub.db)
  ).rows[0]!.n;
const xmins = async (prefix: string) =>
  (
    await sql<{
      x: string;
    }>`select string_agg(xmin::text, ',' order by number) as x from production.work_orders
      where number like ${`${prefix}%`}`.execute(hub.db)
  ).rows[0]!.x;

beforeAll(async () => {
  mes = await startSoapMes();
  dir = mkdtempSync(join(tmpdir(), 'hub-soap-'));
  // The WSDL is fetched from the MES with the connection's auth; calls go to its soap:address.
  writeFileSync(
    join(dir, 'mes.yml'),
    `mes:
  systemType: soap
  name: SOAP-MES
  connection:
    baseUrl: ${mes.url}
    auth:
      type: basic
      username: ${mes.user}
      password: \${TEST_SOAP_PASSWORD}
    timeoutSeconds: 1
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }
  sync: { autoSyncEnabled: false, batchSize: 16, outboundRetryDelaySeconds: 0.1, outboundRetryMaxDelaySeconds: 0.2 }
  lines: [LINE-1, LINE-2]
  soap:
    wsdl: ${mes.wsdlUrl}
    lineMap: { L-SOAP-1: LINE-1 }
`,
  );
  hub = await startTestHub({ seed: true, config: { dir, env: { TEST_SOAP_PASSWORD: mes.password } } });
  eng = await hub.token({ role: 'engineer' });
  for (const o of makeB2mmlOrders('L-SOAP-1', 50, T0, ['P-CAP', 'P-SOAP-NEW'], 'SOAP-WO')) mes.orders.set(o.id, o);
});
afterAll(async () => {
  await hub?.close();
  await mes?.close();
});
beforeEach(() => mes.setMode('ok'));

describe('SOAP/B2MML MES schedule sync through the gateway', () => {
  it(`creates the orders from a ShowProductionSchedule, \
then an unchanged re-sync writes nothing and a change updates that order`, async () => {
    const first = await sync();
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data.syncSchedules).toMatchObject({
      system: 'SOAP-MES',
      systemKind: 'MES',
      status: 'SUCCESS',
      fetched: 50,
      created: 50,
      updated: 0,
    });
    // The selection went out in B2MML: the line as the MES's equipment id, the window, our sender id.
    expect(mes.lastSelection).toEqual({
      equipment: 'L-SOAP-1',
      start: RANGE.from,
      end: RANGE.to,
      requestId: undefined,
      sender: 'OEE-HUB',
    });
    expect(mes.wsdlRequests).toBe(1);
    // Segment 0010 starts the order, segment 0020 ends it and produces the quantity; Released is PLANNED.
    const wo = await sql<{
      lineId: string;
      productId: string;
      plannedStart: Date;
      plannedEnd: Date;
      plannedQuantity: number;
      status: string;
      priority: number;
      source: string;
    }>`
      select line_id, product_id, planned_start, planned_end, planned_quantity, status, priority,
        source from production.work_orders where number = 'SOAP-WO-000004'`.execute(hub.db);
    expect(wo.rows[0]).toEqual({
      lineId: 'LINE-1',
      productId: 'P-SOAP-NEW',
      plannedStart: new Date(T0.getTime() + 3 * 3_600_000),
      plannedEnd: new Date(T0.getTime() + 4 * 3_600_000),
      plannedQuantity: 103,
      status: 'PLANNED',
      priority: 4,
      source: 'SOAP-MES',
    });

    const before = await xmins('SOAP-WO');
    expect((await sync()).body.data.syncSchedules).toMatchObject({
      status: 'SUCCESS',
      fetched: 50,
      created: 0,
      updated: 0,
      unchanged: 50,
    });
    expect(await xmins('SOAP-WO')).toBe(before);
    expect(await count('SOAP-WO')).toBe(50);

    mes.orders.get('SOAP-WO-000009')!.state = 'Running';
    expect((await sync()).body.data.syncSchedules).toMatchObject({ created: 0, updated: 1, unchanged: 49 });
    const s = await sql<{
      status: string;
    }>`select status from production.work_orders where number = 'SOAP-WO-000009'`.execute(hub.db);
    expect(s.rows[0]!.status).toBe('ACTIVE');
    expect(mes.wsdlRequests).toBe(1); // the WSDL is read once per connector
  });

  it('keeps the usable requests and reports the rest: PARTIAL with their keys', async () => {
    const bad = makeB2mmlOrders('LINE-2', 3, T0, ['P-HSG'], 'SOAP-BAD');
    bad[1]!.state = 'Weird';
    bad[2]!.product = null; // no produced MaterialRequirement: no quantity
    for (const o of bad) mes.orders.set(o.id, o);
    const r = await sync('LINE-2');
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'PARTIAL', fetched: 3, created: 1, rejected: 2 });
    const errors = r.body.data.syncSchedules.errors;
    expect(errors.map((e: any) => e.key).sort()).toEqual(['SOAP-BAD-000002', 'SOAP-BAD-000003']);
    expect(errors.find((e: any) => e.key === 'SOAP-BAD-000002').message).toMatch(
      /RequestState "Weird" is not in statusMap/,
    );
    expect(errors.find((e: any) => e.key === 'SOAP-BAD-000003').message).toMatch(/MaterialUse Produced/);
    for (const o of bad) mes.orders.delete(o.id);
  });

  it('retries a SOAP Server fault (HTTP 500) and then records FAILED with the faultstring', async () => {
    mes.setMode('500');
    const calls = mes.calls;
    const r = await sync();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'FAILED', fetched: 0, created: 0 });
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(
      /SOAP-MES: .*answered 500: SOAP Fault soap:Server: MES database unavailable/,
    );
    expect(mes.calls - calls).toBe(2); // maxAttempts
  });

  it('does not retry a SOAP Client fault: the request itself was refused', async () => {
    mes.setMode('soapFault');
    const before = mes.scheduleRequests;
    const r = await sync();
    expect(r.body.data.syncSchedules.status).toBe('FAILED');
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(
      /SOAP Fault soap:Client: GetProductionSchedule: HierarchyScope is not a known production line/,
    );
    expect(mes.scheduleRequests - before).toBe(1);
  });

  it.each([
    ['timeout', /failed/],
    ['malformed', /cannot use: Invalid XML \(Error: Unclosed root tag\)/],
  ] as const)('records FAILED with a typed error when the MES is %s', async (mode, message) => {
    mes.setMode(mode);
    const r = await sync();
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(message);
    expect(await count('SOAP-WO')).toBe(50);
  });

  it('converges with a MES failing 30% of calls: FAILED runs first, then SUCCESS, with no duplicates', async () => {
    // Seed 12's first two draws are failures: the first sync's call and its one retry (maxAttempts 2) both get 503.
    mes.setMode('flaky30', 'all', 12);
    const faultsBefore = mes.injectedFaults;
    const statuses: string[] = [];
    for (let i = 0; i < 30 && statuses.at(-1) !== 'SUCCESS'; i++)
      statuses.push((await sync()).body.data.syncSchedules.status);
    expect(statuses.at(-1)).toBe('SUCCESS');
    const failed = statuses.slice(0, -1);
    expect(failed.length).toBeGreaterThanOrEqual(1); // a failure really happened before convergence
    expect(failed.every((s) => s === 'FAILED')).toBe(true);
    // Every FAILED run met a fault on each of its two attempts, and the fake counted them.
    expect(mes.injectedFaults - faultsBefore).toBeGreaterThanOrEqual(2 * failed.length);
    expect(await count('SOAP-WO')).toBe(50);
  });

  it(`cuts a ShowProductionSchedule that stalls mid-body at the deadline (a typed error, not a hang), \
retries it, then records FAILED`, async () => {
    mes.setMode('stallBody');
    const from = mes.trace.length;
    const run = (await sync()).body.data.syncSchedules;
    expect(run).toMatchObject({ status: 'FAILED', fetched: 0, created: 0 });
    expect(run.errors[0].message).toMatch(/SOAP-MES: POST \/mes\/b2mml failed: /);
    // Both attempts (maxAttempts 2) got headers and half a body, and each was cut at its 1 s deadline.
    expect(mes.trace.slice(from).map((c) => c.answered)).toEqual(['stalled', 'stalled']);
    expect(run.durationMs).toBeGreaterThanOrEqual(2 * 1000);
    expect(run.durationMs).toBeLessThan(5000);
    expect(await auditedErrorCode(run.id)).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('retries a 429 after its Retry-After, capped at retry.maxDelayMs (50 ms here), then succeeds', async () => {
    mes.setMode('status', 'all', { status: 429, retryAfter: '1', times: 1 });
    const from = mes.trace.length;
    expect((await sync()).body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 50 });
    const calls = mes.trace.slice(from);
    expect(calls.map((c) => c.answered)).toEqual([429, 200]);
    // Backoff alone waits 5-10 ms here (baseDelayMs 10, jittered); Retry-After asks 1 s, which the cap makes 50 ms.
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeGreaterThanOrEqual(45);
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeLessThan(900);
  });

  it('refuses a recipe download: B2MML ProductionSchedule has no recipe operation (NOT_SUPPORTED)', async () => {
    const r = await hub.gql(eng, 'mutation { downloadRecipe(mesRecipeId: "RCP-1") { createdVersion } }');
    expect(r.body.errors[0].extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'NOT_SUPPORTED',
      system: 'SOAP-MES',
    });
  });
});

describe('one work order from the SOAP MES (connector workOrder)', () => {
  it(`asks GetProductionSchedule for the ProductionRequest ID alone and maps the answer; \
an unknown one is null`, async () => {
    const c = createMesConnector(loadMesConfig(dir, { TEST_SOAP_PASSWORD: mes.password })!);
    try {
      const wo = await c.workOrder('SOAP-WO-000004');
      expect(mes.lastSelection).toMatchObject({
        requestId: 'SOAP-WO-000004',
        equipment: undefined,
        start: undefined,
        end: undefined,
      });
      expect(wo).toMatchObject({
        number: 'SOAP-WO-000004',
        lineId: 'LINE-1',
        productId: 'P-SOAP-NEW',
        status: 'PLANNED',
      });
      expect(wo!.plannedStart.toISOString()).toBe(new Date(T0.getTime() + 3 * 3_600_000).toISOString());
      expect(await c.workOrder('SOAP-WO-999999')).toBeNull();
      mes.setMode('soapFault');
      await expect(c.workOrder('SOAP-WO-000004')).rejects.toMatchObject({
        extensions: { code: 'UPSTREAM_BAD_RESPONSE', upstreamCode: 'soap:Client' },
      });
    } finally {
      await c.close();
    }
  });
});

describe('order status back to the SOAP MES as a ProductionPerformance', () => {
  const UPDATE = `mutation($id: ID!, $q: Int!, $key: String) { updateOrderStatus(workOrderId: $id, status: COMPLETED,
    actualQuantity: $q, idempotencyKey: $key) {
    id idempotencyKey state workOrder { number status actualQuantity } } }`;
  const woId = async (number: string) =>
    (await sql<{ id: string }>`select id from production.work_orders where number = ${number}`.execute(hub.db)).rows[0]!
      .id;
  const outbound = (id: string) =>
    hub
      .gql(
        eng,
        `{ outboundUpdates(state: [PENDING, SENT, REJECTED], first: 100) { nodes { id state attempts lastError } } }`,
      )
      .then((r) => r.body.data.outboundUpdates.nodes.find((n: any) => n.id === id));

  it('is PENDING while the MES answers faults, then sent and applied once', async () => {
    mes.setMode('500', 'performance');
    const r = await hub.gql(eng, UPDATE, { id: await woId('SOAP-WO-000001'), q: 95, key: 'soap-report-000001' });
    expect(r.body.errors).toBeUndefined();
    const u = r.body.data.updateOrderStatus;
    expect(u).toMatchObject({
      state: 'PENDING',
      workOrder: { number: 'SOAP-WO-000001', status: 'COMPLETED', actualQuantity: 95 },
    });
    const pending = await until(
      'a failed attempt',
      () => outbound(u.id),
      (n) => !!n?.lastError,
      20_000,
    );
    expect(pending.state).toBe('PENDING');
    expect(pending.lastError).toMatch(/soap:Server: MES database unavailable/);
    expect(mes.performances.size).toBe(0);
    mes.setMode('ok');
    await until(
      'SENT',
      () => outbound(u.id),
      (n) => n?.state === 'SENT',
      30_000,
    );
    // The fake's soap package parsed our B2MML: ID, ProductionRequestID, ResponseState, the produced quantity, times.
    const p = mes.performances.get('soap-report-000001')!;
    expect(p).toMatchObject({ order: 'SOAP-WO-000001', state: 'Completed', quantity: 95, count: 1 });
    expect(Date.parse(p.actualEnd!)).toBeGreaterThanOrEqual(Date.parse(p.actualStart!));
    expect(mes.orders.get('SOAP-WO-000001')!.state).toBe('Completed');
  });

  it(`applies a report once when the MES applied it but its answer was a fault (resent with the same \
ProductionPerformance ID)`, async () => {
    mes.setMode('applyThenFail', 'performance');
    const before = mes.performanceRequests;
    const r = await hub.gql(eng, UPDATE, { id: await woId('SOAP-WO-000002'), q: 120, key: 'soap-report-000002' });
    await until(
      'SENT',
      () => outbound(r.body.data.updateOrderStatus.id),
      (n) => n?.state === 'SENT',
      30_000,
    );
    expect(mes.performanceRequests - before).toBe(2);
    expect(mes.performances.get('soap-report-000002')).toMatchObject({
      order: 'SOAP-WO-000002',
      quantity: 120,
      count: 1,
    });
  });

  it(`ends a report REJECTED with the reason when the MES rejects it (B2MML Rejected) or refuses it (Client fault); \
re-queued, it is sent`, async () => {
    const REQUEUE = `mutation($id: ID!) { requeueOutboundUpdate(id: $id) { state } }`;
    mes.setMode('reject', 'performance');
    const r = await hub.gql(eng, UPDATE, { id: await woId('SOAP-WO-000003'), q: 7, key: 'soap-report-000003' });
    const id = r.body.data.updateOrderStatus.id;
    const rejected = await until(
      'REJECTED',
      () => outbound(id),
      (n) => n?.state === 'REJECTED',
      20_000,
    );
    expect(rejected.lastError).toMatch(/was rejected: order is locked by the quality department/);
    expect(rejected.attempts).toBe(1);
    mes.setMode('soapFault', 'performance');
    expect((await hub.gql(eng, REQUEUE, { id })).body.data.requeueOutboundUpdate.state).toBe('PENDING');
    const refused = await until(
      'refused by a Client fault',
      () => outbound(id),
      (n) => n?.state === 'REJECTED' && /soap:Client/.test(n.lastError ?? ''),
      20_000,
    );
    expect(refused.attempts).toBe(2);
    expect(mes.performances.has('soap-report-000003')).toBe(false);
    mes.setMode('ok');
    expect((await hub.gql(eng, REQUEUE, { id })).body.errors).toBeUndefined();
    await until(
      'SENT',
      () => outbound(id),
      (n) => n?.state === 'SENT',
      30_000,
    );
    expect(mes.performances.get('soap-report-000003')).toMatchObject({ quantity: 7, count: 1 });
  });
});
