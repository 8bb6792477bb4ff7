import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { makeOracleWorkOrders, startOracle, type FakeOracle } from '../fakes/oracle-rest.ts';

let hub: TestHub;
let ora: FakeOracle;
let eng: string;
const T0 = new Date(Date.UTC(2030, 8, 1));
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 40 * 86_400_000).toISOString() };
const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from,
  to: $to) {
  system systemKind status fetched created updated unchanged rejected errors { key message } } }`;
const sync = (line = 'LINE-1') => hub.gql(eng, SYNC, { line, ...RANGE });
const count = async (prefix: string) =>
  (
    await sql<{
      n: number;
    }>`select count(*)::int as n from production.work_orders where number like ${`${prefix}%`}`.execute(hub.db)
  ).rows[0]!.n;
const xmins = async () =>
  (
    await sql<{
      x: string;
    }>`select string_agg(xmin::text, ',' order by number) as x from production.work_orders
      where source = 'FUSION-TEST'`.execute(hub.db)
  ).rows[0]!.x;

beforeAll(async () => {
  ora = await startOracle();
  const dir = mkdtempSync(join(tmpdir(), 'hub-oracle-'));
  writeFileSync(
    join(dir, 'erp.yml'),
    `erp:
  systemType: oracle_rest
  name: FUSION-TEST
  connection:
    baseUrl: ${ora.url}
    auth:
      type: oauth2
      tokenUrl: ${ora.url}/oauth2/v1/token
      clientId: ${ora.clientId}
      clientSecret: \${TEST_ORACLE_SECRET}
    timeoutSeconds: 1
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }
  lineMap: { WA-ASSY-1: LINE-1, WA-ASSY-2: LINE-1, WA-PACK: LINE-2 }
  sync: { autoSyncEnabled: false, batchSize: 32 }
  oracle: { organizationCode: M1, pageSize: 20 }
`,
  );
  hub = await startTestHub({ seed: true, config: { dir, env: { TEST_ORACLE_SECRET: ora.clientSecret } } });
  eng = await hub.token({ role: 'engineer' });
  for (const w of makeOracleWorkOrders('WA-ASSY-1', 65, T0)) ora.workOrders.set(String(w.WorkOrderNumber), w);
  for (const w of makeOracleWorkOrders('WA-ASSY-2', 5, T0, 'AS54999', 300100071700000))
    ora.workOrders.set(String(w.WorkOrderNumber), w);
  // Another organization and another line: never read for LINE-1.
  for (const w of makeOracleWorkOrders('WA-ASSY-1', 3, T0, 'AS54888', 300100071800000))
    ora.workOrders.set(`M2-${w.WorkOrderNumber}`, {
      ...w,
      OrganizationCode: 'M2',
      WorkOrderNumber: `M2-${w.WorkOrderNumber}`,
    });
  for (const w of makeOracleWorkOrders('WA-PACK', 4, T0, 'PK-1', 300100071900000))
    ora.workOrders.set(String(w.WorkOrderNumber), w);
});
afterAll(async () => {
  await hub?.close();
  await ora?.close();
});
beforeEach(() => ora.setMode('ok'));

describe('Oracle Fusion REST workOrders as schedules', () => {
  it(`reads every page by offset until hasMore is false, maps the work order, \
and re-syncs without writing`, async () => {
    const calls = ora.calls;
    const r = await sync();
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.syncSchedules).toMatchObject({
      system: 'FUSION-TEST',
      systemKind: 'ERP',
      status: 'SUCCESS',
      fetched: 70,
      created: 70,
      updated: 0,
    });
    // 70 orders at 20 a page: 4 pages, plus the token request.
    expect(ora.calls - calls).toBe(5);
    expect(ora.queries.at(-1)).toBe(
      `OrganizationCode='M1' and (WorkAreaCode='WA-ASSY-1' or WorkAreaCode='WA-ASSY-2') and PlannedStartDate<'` +
        `${RANGE.to}' and PlannedCompletionDate>'${RANGE.from}'`,
    );
    expect(ora.lastHeaders?.['rest-framework-version']).toBe('4');
    const wo = await sql<{
      lineId: string;
      productId: string;
      plannedStart: Date;
      plannedEnd: Date;
      plannedQuantity: number;
      status: string;
      priority: number;
    }>`
      select line_id, product_id, planned_start, planned_end, planned_quantity, status, priority
        from production.work_orders where number = 'M1-WA-ASSY-1-00003'`.execute(hub.db);
    expect(wo.rows[0]).toEqual({
      lineId: 'LINE-1',
      productId: 'AS54888',
      plannedStart: new Date(T0.getTime() + 16 * 3_600_000),
      plannedEnd: new Date(T0.getTime() + 24 * 3_600_000),
      plannedQuantity: 42,
      status: 'PLANNED',
      priority: 5,
    });
    expect(await count('M2-')).toBe(0);

    const before = await xmins();
    expect((await sync()).body.data.syncSchedules).toMatchObject({
      status: 'SUCCESS',
      fetched: 70,
      created: 0,
      updated: 0,
      unchanged: 70,
    });
    expect(await xmins()).toBe(before);

    Object.assign(ora.workOrders.get('M1-WA-ASSY-1-00010')!, {
      CompletedQuantity: 12,
      ActualStartDate: '2030-09-04T03:05:00+00:00',
    });
    expect((await sync()).body.data.syncSchedules).toMatchObject({ created: 0, updated: 1, unchanged: 69 });
    const upd = await sql<{
      status: string;
      actualQuantity: number;
      actualStart: Date;
    }>`select status, actual_quantity, actual_start from production.work_orders
      where number = 'M1-WA-ASSY-1-00010'`.execute(hub.db);
    expect(upd.rows[0]).toEqual({
      status: 'ACTIVE',
      actualQuantity: 12,
      actualStart: new Date('2030-09-04T03:05:00Z'),
    });
    expect((await sync('LINE-2')).body.data.syncSchedules).toMatchObject({ fetched: 4, created: 4 });
  });

  it('stops on a page that repeats and on an empty page that promises more, keeping what it read', async () => {
    ora.setMode('repeatPage');
    const rep = await sync();
    expect(rep.body.data.syncSchedules.status).toBe('PARTIAL');
    expect(rep.body.data.syncSchedules.errors.at(-1).message).toMatch(/page 2 repeats an earlier page/);
    ora.setMode('emptyPage');
    const empty = await sync();
    expect(empty.body.data.syncSchedules).toMatchObject({ status: 'PARTIAL', fetched: 20 });
    expect(empty.body.data.syncSchedules.errors.at(-1).message).toMatch(/page 2 is empty but more pages are promised/);
    expect(await count('M1-WA-ASSY')).toBe(70);
  });

  it('fetches a new OAuth2 token once when Oracle answers 401', async () => {
    const before = ora.tokenRequests;
    ora.revokeTokens();
    expect((await sync()).body.data.syncSchedules.status).toBe('SUCCESS');
    expect(ora.tokenRequests).toBe(before + 1);
  });

  it.each([
    ['500', /answered 500: JBO-29000: Unexpected exception/],
    ['malformed', /not JSON/],
    ['timeout', /failed/],
  ] as const)('records FAILED with a typed error when Oracle is %s', async (mode, message) => {
    ora.setMode(mode);
    const r = await sync();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(message);
  });

  it(`cuts a workOrders page that stalls mid-body at the 1 s deadline (typed, not a hang), retries it, \
then FAILED`, async () => {
    ora.setMode('stallBody');
    const from = ora.trace.length;
    const started = performance.now();
    const r = await sync();
    expect(r.body.data.syncSchedules).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(r.body.data.syncSchedules.errors[0].message).toMatch(
      /FUSION-TEST: GET \/fscmRestApi\/resources\/11\.13\.18\.05\/workOrders failed: /,
    );
    expect(ora.trace.slice(from).map((c) => c.answered)).toEqual(['stalled', 'stalled']);
    // Both attempts (maxAttempts 2) waited out their 1 s deadline, and no longer.
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(2 * 1000);
    expect(elapsed).toBeLessThan(5000);
  });

  it('retries a 429 after its Retry-After, capped at retry.maxDelayMs (50 ms here), and reads every page', async () => {
    ora.setMode('status', { status: 429, retryAfter: '1', times: 1 });
    const from = ora.trace.length;
    expect((await sync()).body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 70 });
    const calls = ora.trace.slice(from);
    expect(calls.map((c) => c.answered)).toEqual([429, 200, 200, 200, 200]);
    // Backoff alone waits 5-10 ms here (baseDelayMs 10, jittered); Retry-After asks 1 s, which the cap makes 50 ms.
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeGreaterThanOrEqual(45);
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeLessThan(900);
  });

  it(`refuses what the workOrders API has no data for (NOT_SUPPORTED), \
without a failed run in the history`, async () => {
    const r = await hub.gql(eng, 'mutation { syncMaterials { status } }');
    expect(r.body.errors[0].extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'NOT_SUPPORTED',
      system: 'FUSION-TEST',
    });
    expect(r.body.errors[0].message).toMatch(/the material master is not supported by this system/);
    const runs = await hub.gql(eng, '{ syncRuns(filter: { kind: [MATERIALS] }) { totalCount } }');
    expect(runs.body.data.syncRuns.totalCount).toBe(0);
  });
});

describe('Oracle Fusion REST with HTTP Basic auth', () => {
  let basicHub: TestHub;
  let ora2: FakeOracle;
  beforeAll(async () => {
    ora2 = await startOracle();
    const dir = mkdtempSync(join(tmpdir(), 'hub-oracle-basic-'));
    // Scheduled syncs on (at midnight only, so none runs during the test): the schedules must name the line only.
    writeFileSync(
      join(dir, 'erp.yml'),
      `erp:
  systemType: oracle_rest
  name: FUSION-BASIC
  connection:
    baseUrl: ${ora2.url}
    auth:
      type: basic
      username: ${ora2.user}
      password: \${TEST_ORACLE_PASSWORD}
    timeoutSeconds: 1
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }
  lineMap: { WA-ASSY-1: LINE-1 }
  sync: { autoSyncEnabled: true, scheduleSyncIntervalMinutes: 1440, materialSyncIntervalMinutes: 1 }
  oracle: { organizationCode: M1, pageSize: 10 }
`,
    );
    basicHub = await startTestHub({ seed: true, config: { dir, env: { TEST_ORACLE_PASSWORD: ora2.password } } });
    for (const w of makeOracleWorkOrders('WA-ASSY-1', 25, T0)) ora2.workOrders.set(String(w.WorkOrderNumber), w);
  });
  afterAll(async () => {
    await basicHub?.close();
    await ora2?.close();
  });

  it(`reads every page with the Basic credentials (no token request), and a changed password is \
a FAILED run`, async () => {
    const token = await basicHub.token({ role: 'engineer' });
    const q = () => basicHub.gql(token, SYNC, { line: 'LINE-1', ...RANGE });
    expect((await q()).body.data.syncSchedules).toMatchObject({ status: 'SUCCESS', fetched: 25, created: 25 });
    expect(ora2.trace.map((c) => c.answered)).toEqual([200, 200, 200]); // 10 + 10 + 5
    expect(ora2.tokenRequests).toBe(0);
    expect(ora2.unauthorized).toBe(0);
    const password = ora2.password;
    ora2.password = 'rotated-in-oracle';
    try {
      const r = (await q()).body.data.syncSchedules;
      expect(r).toMatchObject({ status: 'FAILED', fetched: 0 });
      expect(r.errors[0].message).toMatch(/workOrders answered 401/);
      expect(ora2.unauthorized).toBe(1); // a refused credential is not retried
    } finally {
      ora2.password = password;
    }
  });

  it('schedules the line syncs but no material master sync, which Oracle has no data for', async () => {
    const s = await sql<{ name: string; cron: string }>`select name, cron from pgboss.schedule order by name`.execute(
      basicHub.db,
    );
    expect(s.rows).toEqual([{ name: 'schedule-sync.LINE-1', cron: '0 */24 * * *' }]);
  });
});
