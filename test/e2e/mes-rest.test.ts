import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TelemetryCaches } from '../../lib/telemetry/caches.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { makeOrders, startRestMes, type FakeRestMes } from '../fakes/mes-rest.ts';

let hub: TestHub;
let mes: FakeRestMes;
let eng: string;
const T0 = new Date(Date.UTC(2030, 0, 1));
/** A seed whose first run meets a failure that outlasts the retries (the fake's PRNG is seeded: runs repeat). */
const FLAKY_SEED = Number(process.env.FLAKY_SEED ?? 3);
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 30 * 86_400_000).toISOString() };

const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from, to: $to) {
  id system systemKind kind status fetched created updated unchanged rejected errorCount errors { key message } durationMs trigger requestedBy line { id } } }`;
const sync = async (token: string, line = 'LINE-1') => hub.gql(token, SYNC, { line, ...RANGE });
const orderCount = async (prefix: string) =>
  (await sql<{ n: number }>`select count(*)::int as n from production.work_orders where number like ${prefix + '%'}`.execute(hub.db)).rows[0]!.n;

beforeAll(async () => {
  mes = await startRestMes({ seed: 11 });
  const dir = mkdtempSync(join(tmpdir(), 'hub-mes-'));
  writeFileSync(
    join(dir, 'mes.yml'),
    `mes:
  systemType: rest
  name: TEST-MES
  connection:
    baseUrl: ${mes.url}
    auth:
      type: oauth2
      tokenUrl: ${mes.url}/oauth/token
      clientId: ${mes.clientId}
      clientSecret: \${TEST_MES_SECRET}
    timeoutSeconds: 1
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }
  sync: { autoSyncEnabled: false, batchSize: 40, outboundRetryDelaySeconds: 1, outboundRetryLimit: 30 }
  lines: [LINE-1, LINE-2, LINE-9]
  rest: { paging: { pageSize: 25 } }
`,
  );
  process.env.TEST_MES_SECRET = mes.clientSecret;
  process.env.HUB_CONFIG_DIR = dir;
  hub = await startTestHub({ seed: true });
  delete process.env.HUB_CONFIG_DIR;
  eng = await hub.token({ role: 'engineer' });
  for (const o of makeOrders('LINE-1', 100, T0, ['P-CAP', 'P-NEW-1'])) mes.orders.set(o.OrderNumber, o);
});
afterAll(async () => {
  await hub?.close();
  await mes?.close();
});
beforeEach(() => mes.setMode('ok'));

describe('REST MES schedule sync through the gateway', () => {
  it('creates the orders once, then an unchanged re-sync writes nothing, and a change updates exactly that order', async () => {
    const first = await sync(eng);
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data.syncSchedules).toMatchObject({ system: 'TEST-MES', systemKind: 'MES', kind: 'SCHEDULES', status: 'SUCCESS', fetched: 100, created: 100, updated: 0, unchanged: 0, trigger: 'MANUAL', requestedBy: 'engineer-user', line: { id: 'LINE-1' } });
    expect(await orderCount('LINE-1-WO')).toBe(100);
    // An unknown product named by the MES was added to the catalogue.
    const p = await hub.gql(eng, '{ product(id: "P-NEW-1") { id name } }');
    expect(p.body.data.product).toEqual({ id: 'P-NEW-1', name: 'P-NEW-1' });

    const before = (await sql<{ xmin: string }>`select string_agg(xmin::text, ',' order by number) as xmin from production.work_orders where number like 'LINE-1-WO%'`.execute(hub.db)).rows[0]!.xmin;
    const again = await sync(eng);
    expect(again.body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 100, created: 0, updated: 0, unchanged: 100 });
    const after = (await sql<{ xmin: string }>`select string_agg(xmin::text, ',' order by number) as xmin from production.work_orders where number like 'LINE-1-WO%'`.execute(hub.db)).rows[0]!.xmin;
    expect(after).toBe(before); // no row was rewritten

    mes.orders.get('LINE-1-WO-000007')!.TargetQuantity = '999';
    const changed = await sync(eng);
    expect(changed.body.data.syncSchedules).toMatchObject({ created: 0, updated: 1, unchanged: 99 });
    const wo = await sql<{ plannedQuantity: number; source: string; priority: number }>`select planned_quantity, source, priority from production.work_orders where number = 'LINE-1-WO-000007'`.execute(hub.db);
    expect(wo.rows[0]).toEqual({ plannedQuantity: 999, source: 'TEST-MES', priority: 7 });
  });

  it('puts a synced work order into the telemetry context index at once (LISTEN hub_changes)', async () => {
    const caches = new TelemetryCaches(hub.db, hub.databaseUrl);
    await caches.start();
    try {
      // Inside the index's window (it holds about 60 days ahead) and after the demo plant's week of orders.
      const start = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 30 * 86_400_000);
      // A line of its own: the demo lines' ACTIVE orders cover every later time in the index.
      const admin = await hub.token({ role: 'admin' });
      const site = (await hub.gql(admin, '{ line(id: "LINE-1") { site { id } } }')).body.data.line.site.id;
      expect((await hub.gql(admin, `mutation { createLine(input: { id: "LINE-9", siteId: "${site}", name: "Line 9" }) { id } }`)).body.errors).toBeUndefined();
      const [o] = makeOrders('LINE-9', 1, start, ['P-CAP'], 'LINE-9-LIVE');
      mes.orders.set(o!.OrderNumber, o!);
      const r = await hub.gql(eng, SYNC, { line: 'LINE-9', from: start.toISOString(), to: new Date(start.getTime() + 3_600_000).toISOString() });
      expect(r.body.data.syncSchedules.created).toBe(1);
      const id = (await sql<{ id: string }>`select id from production.work_orders where number = ${o!.OrderNumber}`.execute(hub.db)).rows[0]!.id;
      await until('the index to hold the new order', async () => {
        await caches.ensureFresh();
        return caches.context.lookup('LINE-9', start.getTime() + 60_000).workOrderId;
      }, (v) => v === id, 5_000, 20);
    } finally {
      await caches.stop();
    }
  });

  it('keeps what it could read and reports rejected records: PARTIAL with their errors', async () => {
    const bad = makeOrders('LINE-2', 3, T0, ['P-HSG'], 'LINE-2-BAD');
    bad[1]!.PlannedEnd = bad[1]!.PlannedStart; // end not after start
    bad[2]!.Status = 'WEIRD';
    for (const o of bad) mes.orders.set(o.OrderNumber, o);
    const r = await sync(eng, 'LINE-2');
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'PARTIAL', fetched: 3, created: 1, rejected: 2, errorCount: 2 });
    expect(r.body.data.syncSchedules.errors.map((e: any) => e.key).sort()).toEqual(['LINE-2-BAD-000002', 'LINE-2-BAD-000003']);
    for (const o of bad) mes.orders.delete(o.OrderNumber);
  });

  it('fetches a new token once when the MES answers 401 to a revoked one', async () => {
    const tokensBefore = mes.tokenRequests;
    mes.revokeTokens();
    const r = await sync(eng);
    expect(r.body.data.syncSchedules.status).toBe('SUCCESS');
    expect(mes.tokenRequests).toBe(tokensBefore + 1);
  });

  it.each([
    ['500', /answered 500/],
    ['timeout', /failed/],
    ['malformed', /not JSON/],
  ] as const)('records a FAILED run with a typed error when the MES is %s', async (mode, message) => {
    mes.setMode(mode);
    const r = await sync(eng);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'FAILED', fetched: 0, created: 0 });
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(message);
  });

  it('stops a read whose pages repeat or come back empty while promising more (no endless loop)', async () => {
    mes.setMode('repeatPage');
    const rep = await sync(eng);
    expect(rep.body.data.syncSchedules.status).toBe('PARTIAL');
    expect(rep.body.data.syncSchedules.errors.at(-1).message).toMatch(/repeats an earlier page/);
    mes.setMode('emptyPage');
    const empty = await sync(eng);
    expect(empty.body.data.syncSchedules.status).toBe('PARTIAL');
    expect(empty.body.data.syncSchedules.errors.at(-1).message).toMatch(/empty but more pages are promised/);
    expect(await orderCount('LINE-1-WO')).toBe(100); // nothing doubled
  });

  it('converges with a MES failing 30% of calls: PARTIAL or FAILED runs, then SUCCESS, no duplicates', async () => {
    for (const o of makeOrders('LINE-2', 300, T0, ['P-HSG'], 'LINE-2-FLAKY')) mes.orders.set(o.OrderNumber, o);
    mes.setMode('flaky30', 'all', FLAKY_SEED);
    const statuses: string[] = [];
    for (let i = 0; i < 30 && statuses.at(-1) !== 'SUCCESS'; i++) statuses.push((await sync(eng, 'LINE-2')).body.data.syncSchedules.status);
    expect(statuses.at(-1)).toBe('SUCCESS');
    expect(statuses.slice(0, -1).length).toBeGreaterThan(0);
    expect(statuses.slice(0, -1).every((s) => s === 'PARTIAL' || s === 'FAILED')).toBe(true);
    expect(await orderCount('LINE-2-FLAKY')).toBe(300);
    const h = await hub.gql(eng, `{ syncRuns(filter: { lineId: "LINE-2", kind: [SCHEDULES] }, first: 100) { nodes { status } } }`);
    const history = h.body.data.syncRuns.nodes.map((n: any) => n.status);
    expect(history[0]).toBe('SUCCESS');
    expect(history).toContain('PARTIAL');
  });

  it('refuses syncs to viewers and outside the token scope, and audits every sync', async () => {
    const viewer = await hub.token({ role: 'viewer' });
    expect((await sync(viewer)).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const scoped = await hub.token({ role: 'engineer', lines: ['LINE-2'], sub: 'scoped-eng' });
    expect((await sync(scoped, 'LINE-1')).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const admin = await hub.token({ role: 'admin' });
    const a = await hub.gql(admin, `{ auditLog(first: 500) { nodes { operation outcome actor target details } } }`);
    const ops = a.body.data.auditLog.nodes;
    expect(ops.filter((n: any) => n.operation === 'syncSchedules' && n.outcome === 'FAILURE' && n.actor === 'scoped-eng')).toHaveLength(1);
    const runs = ops.filter((n: any) => n.operation === 'sync.schedules');
    const history = await hub.gql(admin, `{ syncRuns(filter: { kind: [SCHEDULES] }, first: 500) { totalCount } }`);
    expect(runs).toHaveLength(history.body.data.syncRuns.totalCount);
    // The scoped engineer sees only its lines' history.
    const mine = await hub.gql(scoped, `{ syncRuns(first: 500) { nodes { line { id } } } }`);
    expect(new Set(mine.body.data.syncRuns.nodes.map((n: any) => n.line.id))).toEqual(new Set(['LINE-2']));
  });
});

describe('order status back to the MES', () => {
  const UPDATE = `mutation($id: ID!, $q: Int!, $key: String) { updateOrderStatus(workOrderId: $id, status: COMPLETED, actualQuantity: $q, idempotencyKey: $key) {
    id idempotencyKey state attempts workOrder { number status actualQuantity } } }`;
  const woId = async (number: string) => (await sql<{ id: string }>`select id from production.work_orders where number = ${number}`.execute(hub.db)).rows[0]!.id;
  const outbound = (id: string) => hub.gql(eng, `{ outboundUpdates(state: [PENDING, SENT, FAILED], first: 100) { nodes { id state attempts lastError duplicate sentAt } } }`).then((r) => r.body.data.outboundUpdates.nodes.find((n: any) => n.id === id));

  it('shows the report as PENDING while the MES is down, then sends it once', async () => {
    mes.setMode('500', 'status');
    const op = await hub.token({ role: 'operator', sub: 'op-1' });
    const r = await hub.gql(op, UPDATE, { id: await woId('LINE-1-WO-000001'), q: 95 });
    expect(r.body.errors).toBeUndefined();
    const u = r.body.data.updateOrderStatus;
    expect(u).toMatchObject({ state: 'PENDING', workOrder: { number: 'LINE-1-WO-000001', status: 'COMPLETED', actualQuantity: 95 } });
    const pending = await until('a failed attempt', () => outbound(u.id), (n) => n?.attempts >= 1, 20_000);
    expect(pending).toMatchObject({ state: 'PENDING' });
    expect(pending.lastError).toMatch(/500/);
    const listed = await hub.gql(eng, `{ outboundUpdates { nodes { id } } }`);
    expect(listed.body.data.outboundUpdates.nodes.map((n: any) => n.id)).toContain(u.id);
    mes.setMode('ok');
    const sent = await until('the report to be sent', () => outbound(u.id), (n) => n?.state === 'SENT', 30_000);
    expect(sent.duplicate).toBe(false);
    expect(mes.applied.get(u.idempotencyKey)).toMatchObject({ order: 'LINE-1-WO-000001', count: 1, body: { status: 'COMPLETED', actualQuantity: 95 } });
    expect(mes.orders.get('LINE-1-WO-000001')!.Status).toBe('COMPLETED');
  });

  it('applies a report once when the MES applied it but the answer was lost (retried with the same key)', async () => {
    mes.setMode('applyThenFail', 'status');
    const requestsBefore = mes.statusRequests;
    const r = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000002'), q: 120, key: 'report-000002-a' });
    const u = r.body.data.updateOrderStatus;
    const sent = await until('SENT', () => outbound(u.id), (n) => n?.state === 'SENT', 30_000);
    // Two requests with one key: the first applied (its answer lost), the retry recognised as a replay.
    expect(mes.statusRequests - requestsBefore).toBe(2);
    expect(sent.duplicate).toBe(true);
    expect(mes.applied.get('report-000002-a')).toMatchObject({ order: 'LINE-1-WO-000002', count: 1 });
    // The same key again returns the same report and queues nothing new.
    const again = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000002'), q: 120, key: 'report-000002-a' });
    expect(again.body.data.updateOrderStatus.id).toBe(u.id);
    await new Promise((res) => setTimeout(res, 2500));
    expect(mes.statusRequests - requestsBefore).toBe(2);
    // Every attempt is audited: the failed ones of the first report, the successful one of this.
    const admin = await hub.token({ role: 'admin' });
    const audit = await hub.gql(admin, `{ auditLog(filter: { operation: "outbound.orderStatus" }, first: 100) { nodes { outcome target details } } }`);
    const byKey = (k: string) => audit.body.data.auditLog.nodes.filter((n: any) => n.details.idempotencyKey === k).map((n: any) => n.outcome);
    expect(byKey('report-000002-a')).toEqual(['SUCCESS']);
    const first = audit.body.data.auditLog.nodes.filter((n: any) => n.target === 'LINE-1-WO-000001').map((n: any) => n.outcome);
    expect(first[0]).toBe('SUCCESS');
    expect(first.slice(1).every((o: string) => o === 'FAILURE') && first.length >= 2).toBe(true);
  });

  it('needs at least operator and the work order in scope', async () => {
    const viewer = await hub.token({ role: 'viewer' });
    expect((await hub.gql(viewer, UPDATE, { id: await woId('LINE-1-WO-000003'), q: 1 })).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const other = await hub.token({ role: 'operator', lines: ['LINE-2'] });
    expect((await hub.gql(other, UPDATE, { id: await woId('LINE-1-WO-000003'), q: 1 })).body.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('recipes, consumption and variance', () => {
  it('downloads a recipe as a new version only when it changed', async () => {
    mes.recipes.set('MES-RCP-9', { RecipeId: 'RCP-MES-9', Version: 'A', MaterialNumber: 'P-CAP', LineCode: 'LINE-1', CycleTimeSeconds: '11.5', SetupTimeSeconds: 600, Parameters: { meltTempC: 228 } });
    const DL = `mutation { downloadRecipe(mesRecipeId: "MES-RCP-9") { mesVersion createdVersion recipe { code version targetCycleTimeSeconds parameters line { id } } } }`;
    const a = await hub.gql(eng, DL);
    expect(a.body.data.downloadRecipe).toMatchObject({ mesVersion: 'A', createdVersion: true, recipe: { code: 'RCP-MES-9', version: 1, targetCycleTimeSeconds: 11.5, parameters: { meltTempC: 228, mesVersion: 'A' }, line: { id: 'LINE-1' } } });
    const b = await hub.gql(eng, DL);
    expect(b.body.data.downloadRecipe).toMatchObject({ createdVersion: false, recipe: { version: 1 } });
    mes.recipes.get('MES-RCP-9')!.Version = 'B';
    const c = await hub.gql(eng, DL);
    expect(c.body.data.downloadRecipe).toMatchObject({ createdVersion: true, recipe: { version: 2 } });
    const list = await hub.gql(eng, `{ recipeDownloads(mesRecipeId: "MES-RCP-9") { totalCount nodes { createdVersion } } }`);
    expect(list.body.data.recipeDownloads.nodes.map((n: any) => n.createdVersion)).toEqual([true, false, true]);
    mes.recipes.delete('MES-RCP-9');
    const missing = await hub.gql(eng, DL);
    expect(missing.body.errors[0].extensions.code).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('syncs material consumption of a work order and shows planned against actual per order', async () => {
    mes.consumption.set('LINE-1-WO-000001', [
      { ConsumptionId: 'C-1', MaterialNumber: 'RESIN-PP', Quantity: '12.5', Unit: 'KG', LotNumber: 'L1', ConsumedAt: T0.toISOString() },
      { ConsumptionId: 'C-2', MaterialNumber: 'MB-BLUE', Quantity: '0.4', Unit: 'KG', ConsumedAt: T0.toISOString() },
    ]);
    const id = (await sql<{ id: string }>`select id from production.work_orders where number = 'LINE-1-WO-000001'`.execute(hub.db)).rows[0]!.id;
    const SYNC_C = `mutation($id: ID!) { syncMaterialConsumption(workOrderId: $id, system: MES) { status fetched created updated } }`;
    expect((await hub.gql(eng, SYNC_C, { id })).body.data.syncMaterialConsumption).toEqual({ status: 'SUCCESS', fetched: 2, created: 2, updated: 0 });
    expect((await hub.gql(eng, SYNC_C, { id })).body.data.syncMaterialConsumption).toEqual({ status: 'SUCCESS', fetched: 2, created: 0, updated: 0 });
    const q = await hub.gql(eng, `query($id: ID!) { materialConsumption(workOrderId: $id) { nodes { materialId quantity unit lot workOrder { number } } } }`, { id });
    expect(q.body.data.materialConsumption.nodes).toEqual([
      { materialId: 'RESIN-PP', quantity: 12.5, unit: 'KG', lot: 'L1', workOrder: { number: 'LINE-1-WO-000001' } },
      { materialId: 'MB-BLUE', quantity: 0.4, unit: 'KG', lot: null, workOrder: { number: 'LINE-1-WO-000001' } },
    ]);
    const v = await hub.gql(eng, `{ productionVariance(filter: { lineId: "LINE-1", from: "${RANGE.from}", to: "${new Date(T0.getTime() + 3_600_000).toISOString()}" }) {
      nodes { workOrder { number } plannedQuantity actualQuantity quantityVariance quantityRatio plannedSeconds actualSeconds timeVariance } } }`);
    const n = v.body.data.productionVariance.nodes.find((x: any) => x.workOrder.number === 'LINE-1-WO-000001');
    expect(n).toMatchObject({ plannedQuantity: 100, actualQuantity: 95, quantityVariance: -5, quantityRatio: 0.95, plannedSeconds: 3600 });
    expect(typeof n.actualSeconds).toBe('number');
    expect(n.timeVariance).toBeCloseTo(n.actualSeconds - 3600, 3);
  });
});
