import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TelemetryCaches } from '../../lib/telemetry/caches.ts';
import { loadMesConfig } from '../../lib/config/mes.ts';
import { createMesConnector } from '../../lib/connectors/index.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { makeOrders, startRestMes, type FakeRestMes } from '../fakes/mes-rest.ts';

let hub: TestHub;
let mes: FakeRestMes;
let eng: string;
let dir: string;
const T0 = new Date(Date.UTC(2030, 0, 1));
/** A seed whose first run meets a failure that outlasts the retries (the fake's PRNG is seeded: runs repeat). */
const FLAKY_SEED = Number(process.env.FLAKY_SEED ?? 3);
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 30 * 86_400_000).toISOString() };

const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from,
  to: $to) {
  id system systemKind kind status fetched created updated unchanged rejected errorCount errors { key message }
  durationMs trigger requestedBy line { id } } }`;
/** Every sync run this file started through the gateway: the audit must name each of them. */
const runIds = new Set<string>();
const syncWith = async (token: string, vars: Record<string, unknown>) => {
  const r = await hub.gql(token, SYNC, vars);
  const id = r.body.data?.syncSchedules?.id;
  if (id) runIds.add(id);
  return r;
};
const sync = async (token: string, line = 'LINE-1') => syncWith(token, { line, ...RANGE });
const orderCount = async (prefix: string) =>
  (
    await sql<{
      n: number;
    }>`select count(*)::int as n from production.work_orders where number like ${`${prefix}%`}`.execute(hub.db)
  ).rows[0]!.n;

beforeAll(async () => {
  mes = await startRestMes({ seed: 11 });
  dir = mkdtempSync(join(tmpdir(), 'hub-mes-'));
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
  sync: { autoSyncEnabled: false, batchSize: 40, outboundRetryDelaySeconds: 0.1, outboundRetryMaxDelaySeconds: 0.2 }
  lines: [LINE-1, LINE-2, LINE-9]
  rest: { paging: { pageSize: 25 } }
`,
  );
  hub = await startTestHub({ seed: true, config: { dir, env: { TEST_MES_SECRET: mes.clientSecret } } });
  eng = await hub.token({ role: 'engineer' });
  for (const o of makeOrders('LINE-1', 100, T0, ['P-CAP', 'P-NEW-1'])) mes.orders.set(o.OrderNumber, o);
});
afterAll(async () => {
  await hub?.close();
  await mes?.close();
});
beforeEach(() => mes.setMode('ok'));

describe('REST MES schedule sync through the gateway', () => {
  it(`creates the orders once, then an unchanged re-sync writes nothing, \
and a change updates exactly that order`, async () => {
    const first = await sync(eng);
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data.syncSchedules).toMatchObject({
      system: 'TEST-MES',
      systemKind: 'MES',
      kind: 'SCHEDULES',
      status: 'SUCCESS',
      fetched: 100,
      created: 100,
      updated: 0,
      unchanged: 0,
      trigger: 'MANUAL',
      requestedBy: 'engineer-user',
      line: { id: 'LINE-1' },
    });
    expect(await orderCount('LINE-1-WO')).toBe(100);
    // An unknown product named by the MES was added to the catalogue.
    const p = await hub.gql(eng, '{ product(id: "P-NEW-1") { id name } }');
    expect(p.body.data.product).toEqual({ id: 'P-NEW-1', name: 'P-NEW-1' });

    const before = (
      await sql<{
        xmin: string;
      }>`select string_agg(xmin::text, ',' order by number) as xmin from production.work_orders
        where number like 'LINE-1-WO%'`.execute(hub.db)
    ).rows[0]!.xmin;
    const again = await sync(eng);
    expect(again.body.data.syncSchedules).toMatchObject({
      status: 'SUCCESS',
      fetched: 100,
      created: 0,
      updated: 0,
      unchanged: 100,
    });
    const after = (
      await sql<{
        xmin: string;
      }>`select string_agg(xmin::text, ',' order by number) as xmin from production.work_orders
        where number like 'LINE-1-WO%'`.execute(hub.db)
    ).rows[0]!.xmin;
    expect(after).toBe(before); // no row was rewritten

    mes.orders.get('LINE-1-WO-000007')!.TargetQuantity = '999';
    const changed = await sync(eng);
    expect(changed.body.data.syncSchedules).toMatchObject({ created: 0, updated: 1, unchanged: 99 });
    const wo = await sql<{
      plannedQuantity: number;
      source: string;
      priority: number;
    }>`select planned_quantity, source, priority from production.work_orders where number = 'LINE-1-WO-000007'`.execute(
      hub.db,
    );
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
      expect(
        (
          await hub.gql(
            admin,
            `mutation { createLine(input: { id: "LINE-9", siteId: "${site}", name: "Line 9" }) { id } }`,
          )
        ).body.errors,
      ).toBeUndefined();
      const [o] = makeOrders('LINE-9', 1, start, ['P-CAP'], 'LINE-9-LIVE');
      mes.orders.set(o!.OrderNumber, o!);
      const r = await syncWith(eng, {
        line: 'LINE-9',
        from: start.toISOString(),
        to: new Date(start.getTime() + 3_600_000).toISOString(),
      });
      expect(r.body.data.syncSchedules.created).toBe(1);
      const id = (
        await sql<{ id: string }>`select id from production.work_orders where number = ${o!.OrderNumber}`.execute(
          hub.db,
        )
      ).rows[0]!.id;
      await until(
        'the index to hold the new order',
        async () => {
          await caches.ensureFresh();
          return caches.context.lookup('LINE-9', start.getTime() + 60_000).workOrderId;
        },
        (v) => v === id,
        5_000,
        20,
      );
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
    expect(r.body.data.syncSchedules).toMatchObject({
      status: 'PARTIAL',
      fetched: 3,
      created: 1,
      rejected: 2,
      errorCount: 2,
    });
    expect(r.body.data.syncSchedules.errors.map((e: any) => e.key).sort()).toEqual([
      'LINE-2-BAD-000002',
      'LINE-2-BAD-000003',
    ]);
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
    for (let i = 0; i < 30 && statuses.at(-1) !== 'SUCCESS'; i++)
      statuses.push((await sync(eng, 'LINE-2')).body.data.syncSchedules.status);
    expect(statuses.at(-1)).toBe('SUCCESS');
    expect(statuses.slice(0, -1).length).toBeGreaterThan(0);
    expect(statuses.slice(0, -1).every((s) => s === 'PARTIAL' || s === 'FAILED')).toBe(true);
    expect(await orderCount('LINE-2-FLAKY')).toBe(300);
    const h = await hub.gql(
      eng,
      `{ syncRuns(filter: { lineId: "LINE-2", kind: [SCHEDULES] }, first: 100) { nodes { status } } }`,
    );
    const history = h.body.data.syncRuns.nodes.map((n: any) => n.status);
    expect(history[0]).toBe('SUCCESS');
    expect(history).toContain('PARTIAL');
  });

  it('refuses a range that ends before it starts or spans more than 366 days, before calling the MES', async () => {
    const calls = mes.calls;
    const q = (from: string, to: string) => syncWith(eng, { line: 'LINE-1', from, to });
    for (const to of [RANGE.from, new Date(T0.getTime() - 1).toISOString()]) {
      const r = await q(RANGE.from, to);
      expect(r.body.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'to' });
      expect(r.body.errors[0].message).toBe('to must be after from');
    }
    const long = await q(RANGE.from, new Date(T0.getTime() + 367 * 86_400_000).toISOString());
    expect(long.body.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'to' });
    expect(long.body.errors[0].message).toBe('the range may span at most 366 days');
    expect(mes.calls).toBe(calls); // refused before any call
    expect(
      (await q(RANGE.from, new Date(T0.getTime() + 366 * 86_400_000).toISOString())).body.data.syncSchedules.status,
    ).toBe('SUCCESS');
    const runs = await hub.gql(eng, `{ syncRuns(filter: { lineId: "LINE-1" }, first: 1) { nodes { to } } }`);
    expect(Date.parse(runs.body.data.syncRuns.nodes[0].to)).toBe(T0.getTime() + 366 * 86_400_000);
  });

  it('reads one work order from the MES (connector workOrder), mapped; an unknown one is null', async () => {
    const c = createMesConnector(loadMesConfig(dir, { TEST_MES_SECRET: mes.clientSecret })!);
    try {
      const wo = await c.workOrder('LINE-1-WO-000007');
      const raw = mes.orders.get('LINE-1-WO-000007')!;
      expect(wo).toMatchObject({
        number: 'LINE-1-WO-000007',
        lineId: 'LINE-1',
        productId: raw.MaterialNumber,
        plannedQuantity: Number(raw.TargetQuantity),
        status: 'PLANNED',
        priority: 7,
      });
      expect(wo!.plannedEnd.getTime() - wo!.plannedStart.getTime()).toBe(3_600_000);
      expect(await c.workOrder('NO-SUCH-ORDER')).toBeNull();
      mes.orders.set('BROKEN-1', { ...mes.orders.get('LINE-1-WO-000007')!, OrderNumber: 'BROKEN-1', Status: 'WEIRD' });
      await expect(c.workOrder('BROKEN-1')).rejects.toMatchObject({ extensions: { code: 'UPSTREAM_BAD_RESPONSE' } });
      mes.orders.delete('BROKEN-1');
    } finally {
      await c.close();
    }
  });

  it('refuses syncs to viewers and outside the token scope, and audits every sync', async () => {
    const viewer = await hub.token({ role: 'viewer' });
    expect((await sync(viewer)).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const scoped = await hub.token({ role: 'engineer', lines: ['LINE-2'], sub: 'scoped-eng' });
    expect((await sync(scoped, 'LINE-1')).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const admin = await hub.token({ role: 'admin' });
    const a = await hub.gql(admin, `{ auditLog(first: 500) { nodes { operation outcome actor target details } } }`);
    const ops = a.body.data.auditLog.nodes;
    expect(
      ops.filter((n: any) => n.operation === 'syncSchedules' && n.outcome === 'FAILURE' && n.actor === 'scoped-eng'),
    ).toHaveLength(1);
    // Each run this file started has its own audit entry, and there is no other.
    const runs = ops.filter((n: any) => n.operation === 'sync.schedules');
    expect(runIds.size).toBeGreaterThan(0);
    expect(runs).toHaveLength(runIds.size);
    expect(new Set(runs.map((n: any) => n.details.runId))).toEqual(runIds);
    // The scoped engineer sees only its lines' history.
    const mine = await hub.gql(scoped, `{ syncRuns(first: 500) { nodes { line { id } } } }`);
    expect(new Set(mine.body.data.syncRuns.nodes.map((n: any) => n.line.id))).toEqual(new Set(['LINE-2']));
  });
});

describe('order status back to the MES', () => {
  const UPDATE = `mutation($id: ID!, $q: Int!, $key: String) { updateOrderStatus(workOrderId: $id, status: COMPLETED,
    actualQuantity: $q, idempotencyKey: $key) {
    id idempotencyKey state attempts workOrder { number status actualQuantity } } }`;
  const woId = async (number: string) =>
    (await sql<{ id: string }>`select id from production.work_orders where number = ${number}`.execute(hub.db)).rows[0]!
      .id;
  const outbound = (id: string) =>
    hub
      .gql(
        eng,
        `{ outboundUpdates(state: [PENDING, SENT, REJECTED], first: 100) { nodes { id state attempts lastError duplicate
          sentAt } } }`,
      )
      .then((r) => r.body.data.outboundUpdates.nodes.find((n: any) => n.id === id));
  /** Queues a new report of `number` and waits until it is SENT. */
  const sentMarker = async (number: string, q: number, key: string) => {
    const r = await hub.gql(eng, UPDATE, { id: await woId(number), q, key });
    expect(r.body.errors).toBeUndefined();
    return until(
      `the report ${key} to be sent`,
      () => outbound(r.body.data.updateOrderStatus.id),
      (n) => n?.state === 'SENT',
      20_000,
    );
  };

  it('shows the report as PENDING while the MES is down, then sends it once', async () => {
    mes.setMode('500', 'status');
    const op = await hub.token({ role: 'operator', sub: 'op-1' });
    const r = await hub.gql(op, UPDATE, { id: await woId('LINE-1-WO-000001'), q: 95 });
    expect(r.body.errors).toBeUndefined();
    const u = r.body.data.updateOrderStatus;
    expect(u).toMatchObject({
      state: 'PENDING',
      workOrder: { number: 'LINE-1-WO-000001', status: 'COMPLETED', actualQuantity: 95 },
    });
    const pending = await until(
      'a failed attempt',
      () => outbound(u.id),
      (n) => !!n?.lastError,
      20_000,
    );
    expect(pending).toMatchObject({ state: 'PENDING' });
    expect(pending.lastError).toMatch(/500/);
    const listed = await hub.gql(eng, `{ outboundUpdates { nodes { id } } }`);
    expect(listed.body.data.outboundUpdates.nodes.map((n: any) => n.id)).toContain(u.id);
    mes.setMode('ok');
    const sent = await until(
      'the report to be sent',
      () => outbound(u.id),
      (n) => n?.state === 'SENT',
      30_000,
    );
    expect(sent.duplicate).toBe(false);
    expect(mes.applied.get(u.idempotencyKey)).toMatchObject({
      order: 'LINE-1-WO-000001',
      count: 1,
      body: { status: 'COMPLETED', actualQuantity: 95 },
    });
    expect(mes.orders.get('LINE-1-WO-000001')!.Status).toBe('COMPLETED');
  });

  it('applies a report once when the MES applied it but the answer was lost (retried with the same key)', async () => {
    mes.setMode('applyThenFail', 'status');
    const requestsBefore = mes.statusRequests;
    const r = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000002'), q: 120, key: 'report-000002-a' });
    const u = r.body.data.updateOrderStatus;
    const sent = await until(
      'SENT',
      () => outbound(u.id),
      (n) => n?.state === 'SENT',
      30_000,
    );
    // Two requests with one key: the first applied (its answer lost), the retry recognised as a replay.
    expect(mes.statusRequests - requestsBefore).toBe(2);
    expect(sent.duplicate).toBe(true);
    expect(mes.applied.get('report-000002-a')).toMatchObject({ order: 'LINE-1-WO-000002', count: 1 });
    // The same key again returns the same report and queues nothing new.
    const again = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000002'), q: 120, key: 'report-000002-a' });
    expect(again.body.data.updateOrderStatus.id).toBe(u.id);
    // A later report of the same order goes out only after every earlier PENDING one: once it is SENT, anything
    // the replay had queued or re-opened would have been sent before it.
    mes.setMode('ok');
    await sentMarker('LINE-1-WO-000002', 120, 'report-000002-marker');
    expect(mes.trace.filter((c) => c.key === 'report-000002-a')).toHaveLength(2);
    expect(mes.statusRequests - requestsBefore).toBe(3);
    // Every attempt is audited: the failed ones of the first report, the successful one of this.
    const admin = await hub.token({ role: 'admin' });
    const audit = await hub.gql(
      admin,
      `{ auditLog(filter: { operation: "outbound.orderStatus" }, first: 100) { nodes { outcome target details } } }`,
    );
    const byKey = (k: string) =>
      audit.body.data.auditLog.nodes.filter((n: any) => n.details.idempotencyKey === k).map((n: any) => n.outcome);
    expect(byKey('report-000002-a')).toEqual(['SUCCESS']);
    const first = audit.body.data.auditLog.nodes
      .filter((n: any) => n.target === 'LINE-1-WO-000001')
      .map((n: any) => n.outcome);
    expect(first[0]).toBe('SUCCESS');
    expect(first.slice(1).every((o: string) => o === 'FAILURE') && first.length >= 2).toBe(true);
  });

  const woRow = async (number: string) =>
    (
      await sql<{
        status: string;
        actualQuantity: number;
        xmin: string;
      }>`select status, actual_quantity, xmin::text as xmin from production.work_orders
        where number = ${number}`.execute(hub.db)
    ).rows[0]!;
  const reportsOf = async (number: string) =>
    (
      await sql<{
        n: number;
      }>`select count(*)::int as n from production.outbound_updates where work_order_number = ${number}`.execute(hub.db)
    ).rows[0]!.n;

  it(`replays a reused idempotency key with the same request: the same report, nothing changed, \
nothing sent again`, async () => {
    const id = await woId('LINE-1-WO-000010');
    const first = await hub.gql(eng, UPDATE, { id, q: 40, key: 'reuse-same-000010' });
    expect(first.body.errors).toBeUndefined();
    await until(
      'SENT',
      () => outbound(first.body.data.updateOrderStatus.id),
      (n) => n?.state === 'SENT',
      20_000,
    );
    const before = await woRow('LINE-1-WO-000010');
    const requests = mes.statusRequests;
    const again = await hub.gql(eng, UPDATE, { id, q: 40, key: 'reuse-same-000010' });
    expect(again.body.errors).toBeUndefined();
    expect(again.body.data.updateOrderStatus).toMatchObject({
      id: first.body.data.updateOrderStatus.id,
      state: 'SENT',
    });
    expect(await woRow('LINE-1-WO-000010')).toEqual(before); // not even rewritten (same xmin)
    expect(await reportsOf('LINE-1-WO-000010')).toBe(1);
    // Nothing was sent again: a later report of the order, which waits for any earlier PENDING one, is the only
    // request the MES sees.
    await sentMarker('LINE-1-WO-000010', 40, 'reuse-same-000010-marker');
    expect(mes.statusRequests).toBe(requests + 1);
    expect(mes.trace.filter((c) => c.key === 'reuse-same-000010')).toHaveLength(1);
  });

  it(`refuses a reused key with other values for the same order: CONFLICT, the order unchanged, \
no report queued`, async () => {
    const id = await woId('LINE-1-WO-000011');
    const first = await hub.gql(eng, UPDATE, { id, q: 41, key: 'reuse-diff-000011' });
    expect(first.body.errors).toBeUndefined();
    const before = await woRow('LINE-1-WO-000011');
    const other = await hub.gql(eng, UPDATE, { id, q: 77, key: 'reuse-diff-000011' });
    expect(other.body.errors[0].extensions).toMatchObject({ code: 'CONFLICT', argument: 'idempotencyKey' });
    expect(await woRow('LINE-1-WO-000011')).toEqual(before);
    expect(before.actualQuantity).toBe(41);
    expect(await reportsOf('LINE-1-WO-000011')).toBe(1);
  });

  it('refuses a key already used for another work order: CONFLICT and that order is not touched', async () => {
    const first = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000012'), q: 42, key: 'reuse-order-000012' });
    expect(first.body.errors).toBeUndefined();
    const before = await woRow('LINE-1-WO-000013');
    const r = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000013'), q: 42, key: 'reuse-order-000012' });
    expect(r.body.errors[0].extensions.code).toBe('CONFLICT');
    expect(r.body.errors[0].message).toMatch(/another work order/);
    expect(await woRow('LINE-1-WO-000013')).toEqual(before);
    expect(before.status).not.toBe('COMPLETED');
    expect(await reportsOf('LINE-1-WO-000013')).toBe(0);
  });

  it('holds no transaction or row lock while the MES call is in flight', async () => {
    const hold = mes.holdStatus();
    try {
      const r = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000014'), q: 14, key: 'in-flight-000014' });
      const id = r.body.data.updateOrderStatus.id;
      await hold.arrived;
      // Another session locks and updates the row at once: the sender holds no lock on it during the call.
      await hub.db.transaction().execute(async (tx) => {
        const row = await sql<{
          attempts: number;
          claimed: boolean;
        }>`select attempts, claimed_until > now() as claimed from production.outbound_updates where id = ${id}
          for update nowait`.execute(tx);
        expect(row.rows[0]).toEqual({ attempts: 1, claimed: true });
        await sql`update production.outbound_updates set last_error = last_error where id = ${id}`.execute(tx);
      });
      // No session of the hub's database sits in an open transaction while it waits for the MES.
      const idle = await sql<{
        n: number;
      }>`select count(*)::int as n from pg_stat_activity where datname = current_database()
        and state like 'idle in transaction%'`.execute(hub.db);
      expect(idle.rows[0]!.n).toBe(0);
      hold.release();
      await until(
        'SENT',
        () => outbound(id),
        (n) => n?.state === 'SENT',
        20_000,
      );
    } finally {
      hold.release();
    }
  });

  it(`keeps a report PENDING through more failed attempts than any limit, \
then sends it once when the MES is back`, async () => {
    mes.setMode('500', 'status');
    const r = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000015'), q: 15, key: 'long-outage-000015' });
    const id = r.body.data.updateOrderStatus.id;
    const q = `query($id: ID!) { outboundUpdates(workOrderId: $id, state: [PENDING, SENT, REJECTED]) { nodes { id state
      attempts lastError lastAttemptAt nextAttemptAt } } }`;
    const get = async () =>
      (await hub.gql(eng, q, { id: await woId('LINE-1-WO-000015') })).body.data.outboundUpdates.nodes[0];
    // The old outbox gave up (FAILED) after outboundRetryLimit (30 in this file, 50 by default) attempts.
    const long = await until('51 failed attempts', get, (n) => n?.attempts >= 51, 60_000, 200);
    expect(long).toMatchObject({ id, state: 'PENDING' });
    expect(long.lastError).toMatch(/answered 500/);
    expect(Date.parse(long.nextAttemptAt)).toBeGreaterThanOrEqual(Date.parse(long.lastAttemptAt));
    expect(mes.applied.has('long-outage-000015')).toBe(false);
    mes.setMode('ok');
    const sent = await until('SENT', get, (n) => n?.state === 'SENT', 20_000);
    expect(sent.nextAttemptAt).toBeNull();
    expect(mes.applied.get('long-outage-000015')).toMatchObject({ order: 'LINE-1-WO-000015', count: 1 });
  }, 90_000);

  it(`ends a report the MES refuses (4xx) as REJECTED with the reason; \
an engineer re-queues it and it is sent`, async () => {
    const order = mes.orders.get('LINE-1-WO-000016')!;
    mes.orders.delete('LINE-1-WO-000016'); // the MES answers 404 "no such order"
    const r = await hub.gql(eng, UPDATE, { id: await woId('LINE-1-WO-000016'), q: 16, key: 'refused-000016' });
    const id = r.body.data.updateOrderStatus.id;
    const rejected = await until(
      'REJECTED',
      () => outbound(id),
      (n) => n?.state === 'REJECTED',
      20_000,
    );
    expect(rejected.lastError).toMatch(/answered 404/);
    // Refused once, not retried: a later report of the order (refused too, the MES still has no such order) is
    // handled only when no earlier report of it is PENDING, so the first one could not be retried any more by then.
    const later = await hub.gql(eng, UPDATE, {
      id: await woId('LINE-1-WO-000016'),
      q: 16,
      key: 'refused-000016-marker',
    });
    await until(
      'the later report to be refused too',
      () => outbound(later.body.data.updateOrderStatus.id),
      (n) => n?.state === 'REJECTED',
      20_000,
    );
    expect((await outbound(id)).attempts).toBe(1);
    expect(mes.trace.filter((c) => c.key === 'refused-000016')).toHaveLength(1);
    const listed = await hub.gql(eng, `{ outboundUpdates { nodes { id state } } }`);
    expect(listed.body.data.outboundUpdates.nodes).toContainEqual({ id, state: 'REJECTED' });

    const REQUEUE = `mutation($id: ID!) { requeueOutboundUpdate(id: $id) { id state } }`;
    const op = await hub.token({ role: 'operator' });
    expect((await hub.gql(op, REQUEUE, { id })).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const scoped = await hub.token({ role: 'engineer', lines: ['LINE-2'] });
    expect((await hub.gql(scoped, REQUEUE, { id })).body.errors[0].extensions.code).toBe('FORBIDDEN');
    mes.orders.set('LINE-1-WO-000016', order);
    const rq = await hub.gql(eng, REQUEUE, { id });
    expect(rq.body.errors).toBeUndefined();
    expect(rq.body.data.requeueOutboundUpdate).toEqual({ id, state: 'PENDING' });
    await until(
      'SENT',
      () => outbound(id),
      (n) => n?.state === 'SENT',
      20_000,
    );
    expect(mes.applied.get('refused-000016')).toMatchObject({ count: 1 });
    // Only a REJECTED report can be re-queued.
    expect((await hub.gql(eng, REQUEUE, { id })).body.errors[0].extensions.code).toBe('CONFLICT');
    const admin = await hub.token({ role: 'admin' });
    const audit = await hub.gql(
      admin,
      `{ auditLog(filter: { operation: "requeueOutboundUpdate" }, first: 10) { nodes { outcome actor target } } }`,
    );
    expect(
      audit.body.data.auditLog.nodes
        .filter((n: any) => n.target === id)
        .map((n: any) => n.outcome)
        .sort(),
    ).toEqual(['FAILURE', 'FAILURE', 'FAILURE', 'SUCCESS']);
  });

  it('sends again a report whose sender died mid-call once its claim expires (and not before)', async () => {
    const ids = await Promise.all(['LINE-1-WO-000017', 'LINE-1-WO-000018'].map(woId));
    // As a crashed sender leaves them: claimed, attempted once, never finished. One claim ran out, one has not.
    const ins = (woIdx: number, key: string, claimedUntil: string) =>
      sql<{ id: string }>`
      insert into production.outbound_updates (idempotency_key, system, work_order_id, work_order_number, line_id,
        status, actual_quantity, requested_by, attempts, last_attempt_at, claimed_until, claim_token)
      select ${key}, 'TEST-MES', id, number, line_id, 'ACTIVE', 3, 'test', 1, now(), ${claimedUntil}::timestamptz,
        gen_random_uuid() from production.work_orders where id = ${ids[woIdx]!}
      returning id`.execute(hub.db);
    const expired = (await ins(0, 'crashed-expired-17', new Date(Date.now() - 1000).toISOString())).rows[0]!.id;
    const live = (await ins(1, 'crashed-live-18', new Date(Date.now() + 3_600_000).toISOString())).rows[0]!.id;
    const sent = await until(
      'the expired claim to be sent',
      () => outbound(expired),
      (n) => n?.state === 'SENT',
      20_000,
    );
    expect(sent.attempts).toBe(2);
    expect(mes.applied.get('crashed-expired-17')).toMatchObject({ order: 'LINE-1-WO-000017', count: 1 });
    expect((await outbound(live)).state).toBe('PENDING');
    expect(mes.applied.has('crashed-live-18')).toBe(false);
    await sql`delete from production.outbound_updates where id = ${live}`.execute(hub.db);
  });

  it.each([
    [401, 'LINE-1-WO-000020'],
    [403, 'LINE-1-WO-000021'],
    [408, 'LINE-1-WO-000022'],
    [429, 'LINE-1-WO-000023'],
  ] as const)(
    `keeps a report PENDING while the MES answers %i (credentials, time, load: it may pass), \
retries it, and sends it once the MES accepts it`,
    async (status, number) => {
      mes.setMode('status', 'status', { status });
      const key = `transient-${status}-${number.slice(-6)}`;
      const r = await hub.gql(eng, UPDATE, { id: await woId(number), q: status, key });
      const id = r.body.data.updateOrderStatus.id;
      // Stops at a second failed attempt, or once the report is no longer PENDING (the test then fails below).
      const retried = await until(
        'a second failed attempt',
        () => outbound(id),
        (n) => (!!n && n.state !== 'PENDING') || (n?.attempts >= 2 && !!n.lastError),
        20_000,
      );
      expect(retried.state).toBe('PENDING');
      expect(retried.lastError).toMatch(new RegExp(`answered ${status}`));
      expect(mes.applied.has(key)).toBe(false);
      mes.setMode('ok');
      await until(
        'SENT',
        () => outbound(id),
        (n) => n?.state === 'SENT',
        20_000,
      );
      expect(mes.applied.get(key)).toMatchObject({ order: number, count: 1, body: { actualQuantity: status } });
    },
  );

  it(`sends one order's reports in the order they were made: a later one waits while an earlier one \
is PENDING`, async () => {
    const UPDATE_S = `mutation($id: ID!, $s: WorkOrderStatus!, $q: Int!, $key: String) { updateOrderStatus(
      workOrderId: $id, status: $s, actualQuantity: $q, idempotencyKey: $key) { id } }`;
    const wo = await woId('LINE-1-WO-000024');
    mes.setMode('500', 'status');
    const a = (await hub.gql(eng, UPDATE_S, { id: wo, s: 'ACTIVE', q: 10, key: 'in-order-000024-a' })).body.data
      .updateOrderStatus.id;
    await until(
      'the first report to fail once',
      () => outbound(a),
      (n) => n?.attempts >= 1 && !!n.lastError,
      20_000,
    );
    const b = (await hub.gql(eng, UPDATE_S, { id: wo, s: 'COMPLETED', q: 20, key: 'in-order-000024-b' })).body.data
      .updateOrderStatus.id;
    const attemptsAtB = (await outbound(a)).attempts;
    // The later report was due at once, before the earlier one's next attempt: two more attempts of the earlier one
    // mean the sender passed the later one over (more than) twice.
    await until(
      'two more attempts of the first report',
      () => outbound(a),
      (n) => n?.attempts >= attemptsAtB + 2,
      20_000,
    );
    expect(await outbound(b)).toMatchObject({ state: 'PENDING', attempts: 0 });
    expect(mes.trace.filter((c) => c.key === 'in-order-000024-b')).toHaveLength(0);
    mes.setMode('ok');
    await until(
      'both SENT',
      async () => [await outbound(a), await outbound(b)],
      (ns) => ns.every((n) => n?.state === 'SENT'),
      20_000,
    );
    const keys = mes.trace.filter((c) => c.key?.startsWith('in-order-000024-')).map((c) => c.key);
    expect(keys.indexOf('in-order-000024-b')).toBe(keys.lastIndexOf('in-order-000024-a') + 1);
    expect(mes.trace.filter((c) => c.key === 'in-order-000024-b')).toHaveLength(1);
    expect(mes.orders.get('LINE-1-WO-000024')).toMatchObject({ Status: 'COMPLETED', ActualQuantity: 20 });
  });

  it('needs at least operator and the work order in scope', async () => {
    const viewer = await hub.token({ role: 'viewer' });
    expect(
      (await hub.gql(viewer, UPDATE, { id: await woId('LINE-1-WO-000003'), q: 1 })).body.errors[0].extensions.code,
    ).toBe('FORBIDDEN');
    const other = await hub.token({ role: 'operator', lines: ['LINE-2'] });
    expect(
      (await hub.gql(other, UPDATE, { id: await woId('LINE-1-WO-000003'), q: 1 })).body.errors[0].extensions.code,
    ).toBe('FORBIDDEN');
  });
});

describe('recipes, consumption and variance', () => {
  it('downloads a recipe as a new version only when it changed', async () => {
    mes.recipes.set('MES-RCP-9', {
      RecipeId: 'RCP-MES-9',
      Version: 'A',
      MaterialNumber: 'P-CAP',
      LineCode: 'LINE-1',
      CycleTimeSeconds: '11.5',
      SetupTimeSeconds: 600,
      Parameters: { meltTempC: 228 },
    });
    const DL = `mutation { downloadRecipe(mesRecipeId: "MES-RCP-9") { mesVersion createdVersion recipe { code version
      targetCycleTimeSeconds parameters line { id } } } }`;
    const a = await hub.gql(eng, DL);
    expect(a.body.data.downloadRecipe).toMatchObject({
      mesVersion: 'A',
      createdVersion: true,
      recipe: {
        code: 'RCP-MES-9',
        version: 1,
        targetCycleTimeSeconds: 11.5,
        parameters: { meltTempC: 228, mesVersion: 'A' },
        line: { id: 'LINE-1' },
      },
    });
    const b = await hub.gql(eng, DL);
    expect(b.body.data.downloadRecipe).toMatchObject({ createdVersion: false, recipe: { version: 1 } });
    mes.recipes.get('MES-RCP-9')!.Version = 'B';
    const c = await hub.gql(eng, DL);
    expect(c.body.data.downloadRecipe).toMatchObject({ createdVersion: true, recipe: { version: 2 } });
    const list = await hub.gql(
      eng,
      `{ recipeDownloads(mesRecipeId: "MES-RCP-9") { totalCount nodes { createdVersion } } }`,
    );
    expect(list.body.data.recipeDownloads.nodes.map((n: any) => n.createdVersion)).toEqual([true, false, true]);
    mes.recipes.delete('MES-RCP-9');
    const missing = await hub.gql(eng, DL);
    expect(missing.body.errors[0].extensions.code).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('syncs material consumption of a work order and shows planned against actual per order', async () => {
    // The MES's own actual times for the order: 75 minutes against the hour planned.
    Object.assign(mes.orders.get('LINE-1-WO-000001')!, {
      ActualStart: new Date(T0.getTime() + 5 * 60_000).toISOString(),
      ActualEnd: new Date(T0.getTime() + 80 * 60_000).toISOString(),
    });
    expect((await sync(eng)).body.data.syncSchedules.status).toBe('SUCCESS');
    mes.consumption.set('LINE-1-WO-000001', [
      {
        ConsumptionId: 'C-1',
        MaterialNumber: 'RESIN-PP',
        Quantity: '12.5',
        Unit: 'KG',
        LotNumber: 'L1',
        ConsumedAt: T0.toISOString(),
      },
      { ConsumptionId: 'C-2', MaterialNumber: 'MB-BLUE', Quantity: '0.4', Unit: 'KG', ConsumedAt: T0.toISOString() },
    ]);
    const id = (
      await sql<{ id: string }>`select id from production.work_orders where number = 'LINE-1-WO-000001'`.execute(hub.db)
    ).rows[0]!.id;
    const SYNC_C = `mutation($id: ID!) { syncMaterialConsumption(workOrderId: $id, system: MES) { status fetched created
      updated } }`;
    expect((await hub.gql(eng, SYNC_C, { id })).body.data.syncMaterialConsumption).toEqual({
      status: 'SUCCESS',
      fetched: 2,
      created: 2,
      updated: 0,
    });
    expect((await hub.gql(eng, SYNC_C, { id })).body.data.syncMaterialConsumption).toEqual({
      status: 'SUCCESS',
      fetched: 2,
      created: 0,
      updated: 0,
    });
    const q = await hub.gql(
      eng,
      `query($id: ID!) { materialConsumption(workOrderId: $id) { nodes { materialId quantity unit lot workOrder {
        number } } } }`,
      { id },
    );
    expect(q.body.data.materialConsumption.nodes).toEqual([
      { materialId: 'RESIN-PP', quantity: 12.5, unit: 'KG', lot: 'L1', workOrder: { number: 'LINE-1-WO-000001' } },
      { materialId: 'MB-BLUE', quantity: 0.4, unit: 'KG', lot: null, workOrder: { number: 'LINE-1-WO-000001' } },
    ]);
    const v = await hub.gql(
      eng,
      `{ productionVariance(filter: { lineId: "LINE-1", from: "${RANGE.from}",
      to: "${new Date(T0.getTime() + 3_600_000).toISOString()}" }) {
      nodes { workOrder { number } plannedQuantity actualQuantity quantityVariance quantityRatio plannedSeconds
      actualSeconds timeVariance } } }`,
    );
    const n = v.body.data.productionVariance.nodes.find((x: any) => x.workOrder.number === 'LINE-1-WO-000001');
    expect(n).toEqual({
      workOrder: { number: 'LINE-1-WO-000001' },
      plannedQuantity: 100,
      actualQuantity: 95,
      quantityVariance: -5,
      quantityRatio: 0.95,
      plannedSeconds: 3600,
      actualSeconds: 75 * 60,
      timeVariance: 15 * 60,
    });
  });
});
