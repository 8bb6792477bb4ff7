import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { type FakeRestAuth, makeOrders, startRestMes, type FakeRestMes } from '../fakes/mes-rest.ts';

/**
 * The REST MES on the wire as mes.yml configures it, each case through the gateway against its own hub: paging by
 * a next link, HTTP Basic auth and an API key (in a header, in the query), a body that stalls mid-stream, and 429
 * with Retry-After.
 */
const T0 = new Date(Date.UTC(2031, 0, 1));
const RANGE = { from: T0.toISOString(), to: new Date(T0.getTime() + 10 * 86_400_000).toISOString() };
const SYNC = `mutation($line: ID!, $from: DateTime!, $to: DateTime!) { syncSchedules(lineId: $line, from: $from,
  to: $to) { id status fetched created updated unchanged errors { message } durationMs } }`;

interface Rig {
  hub: TestHub;
  mes: FakeRestMes;
  eng: string;
  sync(): Promise<any>;
}

/**
 * A fake MES with `n` LINE-1 orders and a hub whose mes.yml has `auth` and `rest` (YAML) and reads secrets from
 * env.
 */
async function rig(
  fakeAuth: FakeRestAuth,
  yaml: { auth: string; rest: string; retry: string },
  env: Record<string, string>,
) {
  const mes = await startRestMes({ auth: fakeAuth, paging: /nextLink/.test(yaml.rest) ? 'nextLink' : 'offset' });
  const dir = mkdtempSync(join(tmpdir(), 'hub-mes-wire-'));
  writeFileSync(
    join(dir, 'mes.yml'),
    `mes:
  systemType: rest
  name: WIRE-MES
  connection:
    baseUrl: ${mes.url}
    auth: ${yaml.auth}
    timeoutSeconds: 1
    retry: ${yaml.retry}
  sync: { autoSyncEnabled: false }
  lines: [LINE-1]
  rest: ${yaml.rest}
`,
  );
  const hub = await startTestHub({ seed: true, config: { dir, env } });
  const eng = await hub.token({ role: 'engineer' });
  for (const o of makeOrders('LINE-1', 55, T0, ['P-CAP'], 'WIRE-WO')) mes.orders.set(o.OrderNumber, o);
  const r: Rig = {
    hub,
    mes,
    eng,
    sync: async () => {
      const res = await hub.gql(eng, SYNC, { line: 'LINE-1', ...RANGE });
      expect(res.body.errors).toBeUndefined();
      return res.body.data.syncSchedules;
    },
  };
  return r;
}

const close = async (r?: Rig) => {
  await r?.hub.close();
  await r?.mes.close();
};

/** The typed error a sync run ended with, as its audit entry records it. */
async function auditedErrorCode(r: Rig, runId: string) {
  const admin = await r.hub.token({ role: 'admin' });
  const a = await r.hub.gql(
    admin,
    `{ auditLog(filter: { operation: "sync.schedules" }, first: 50) { nodes { errorCode details } } }`,
  );
  return a.body.data.auditLog.nodes.find((n: any) => n.details.runId === runId)?.errorCode;
}

const orderCount = async (r: Rig) =>
  (
    await sql<{
      n: number;
    }>`select count(*)::int as n from production.work_orders where number like 'WIRE-WO-%'`.execute(r.hub.db)
  ).rows[0]!.n;

describe('a REST MES with HTTP Basic auth, paged by next links', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig(
      { type: 'basic', user: 'hub-basic', password: 'basic-password-1' },
      {
        auth: '{ type: basic, username: hub-basic, password: "${TEST_WIRE_PASSWORD}" }',
        rest: '{ paging: { style: nextLink, nextPath: links.next, pageSize: 20 } }',
        // A cap well above 1 s, so a Retry-After of 1 s is honoured as it is.
        retry: '{ maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 3000 }',
      },
      { TEST_WIRE_PASSWORD: 'basic-password-1' },
    );
  });
  afterAll(() => close(r));
  beforeEach(() => r.mes.setMode('ok'));

  it('follows each next link to the end with the Basic credentials on every page', async () => {
    const from = r.mes.trace.length;
    expect(await r.sync()).toMatchObject({ status: 'SUCCESS', fetched: 55, created: 55 });
    // 55 orders at 20 a page: three pages. The first asks with our parameters, the others are the MES's links.
    const pages = r.mes.trace.slice(from);
    expect(pages.map((c) => [c.method, c.path, c.answered])).toEqual([
      ['GET', '/schedules', 200],
      ['GET', '/schedules', 200],
      ['GET', '/schedules', 200],
    ]);
    expect(r.mes.unauthorized).toBe(0);
    expect(await orderCount(r)).toBe(55);
    const wo = await sql<{ plannedQuantity: number; plannedStart: Date }>`select planned_quantity, planned_start
      from production.work_orders where number = 'WIRE-WO-000047'`.execute(r.hub.db);
    // makeOrders: order i (from 0) plans 100 + i % 50 and starts i hours after T0.
    expect(wo.rows[0]).toEqual({ plannedQuantity: 146, plannedStart: new Date(T0.getTime() + 46 * 3_600_000) });
  });

  it('records FAILED, without retrying, when the MES refuses the credentials (401)', async () => {
    r.mes.auth = { type: 'basic', user: 'hub-basic', password: 'rotated-on-the-mes' };
    try {
      const before = r.mes.unauthorized;
      const run = await r.sync();
      expect(run).toMatchObject({ status: 'FAILED', fetched: 0 });
      expect(run.errors[0].message).toMatch(/GET \/schedules answered 401/);
      expect(r.mes.unauthorized - before).toBe(1);
    } finally {
      r.mes.auth = { type: 'basic', user: 'hub-basic', password: 'basic-password-1' };
    }
  });

  it(`cuts a page that stalls mid-body at the 1 s deadline with a typed error (not a hang), retries it, \
then records FAILED`, async () => {
    r.mes.setMode('stallBody');
    const from = r.mes.trace.length;
    const run = await r.sync();
    expect(run).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(run.errors[0].message).toMatch(/WIRE-MES: GET \/schedules failed: /);
    expect(r.mes.trace.slice(from).map((c) => c.answered)).toEqual(['stalled', 'stalled']);
    // Each of the two attempts waited out its whole deadline, and no longer.
    expect(run.durationMs).toBeGreaterThanOrEqual(2 * 1000);
    expect(run.durationMs).toBeLessThan(5000);
    expect(await auditedErrorCode(r, run.id)).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('reads the page again after one stalled answer and succeeds', async () => {
    r.mes.setMode('stallBody', 'all', { times: 1 });
    const from = r.mes.trace.length;
    expect(await r.sync()).toMatchObject({ status: 'SUCCESS', fetched: 55 });
    expect(r.mes.trace.slice(from).map((c) => c.answered)).toEqual(['stalled', 200, 200, 200]);
  });

  it('answers a recipe download whose body stalls with UPSTREAM_UNAVAILABLE to the caller', async () => {
    r.mes.recipes.set('RCP-STALL', {
      RecipeId: 'RCP-STALL',
      Version: 'A',
      MaterialNumber: 'P-CAP',
      CycleTimeSeconds: 9,
    });
    r.mes.setMode('stallBody');
    const t0 = performance.now();
    const res = await r.hub.gql(r.eng, 'mutation { downloadRecipe(mesRecipeId: "RCP-STALL") { createdVersion } }');
    expect(res.body.errors[0].extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', system: 'WIRE-MES' });
    expect(res.body.errors[0].message).toMatch(/GET \/recipes\/RCP-STALL failed: /);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it.each([
    ['delay-seconds', '1', 990],
    // An HTTP-date has whole seconds, made as the 429 is answered: two seconds on, rounded down, is over one away.
    ['an HTTP-date', () => new Date(Date.now() + 2000).toUTCString(), 990],
  ])('waits for the Retry-After of a 429 (%s) before it retries, then succeeds', async (_, retryAfter, atLeastMs) => {
    r.mes.setMode('status', 'all', { status: 429, retryAfter, times: 1 });
    const from = r.mes.trace.length;
    expect(await r.sync()).toMatchObject({ status: 'SUCCESS', fetched: 55 });
    const calls = r.mes.trace.slice(from);
    expect(calls.map((c) => c.answered)).toEqual([429, 200, 200, 200]);
    // Backoff alone would wait 5-10 ms (baseDelayMs 10, jittered).
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeGreaterThanOrEqual(atLeastMs);
    expect(calls[1]!.at - calls[0]!.answeredAt!).toBeLessThan(3000 + 500);
  });

  it('records FAILED with the status after maxAttempts answers of 429', async () => {
    r.mes.setMode('status', 'all', { status: 429, retryAfter: '0' });
    const from = r.mes.trace.length;
    const run = await r.sync();
    expect(run).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(run.errors[0].message).toMatch(/GET \/schedules answered 429/);
    expect(r.mes.trace.slice(from).map((c) => c.answered)).toEqual([429, 429]);
  });
});

describe('a REST MES with an API key in a header', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig(
      { type: 'apiKey', header: 'X-Plant-Key', key: 'plant-key-0001' },
      {
        auth: '{ type: apiKey, header: X-Plant-Key, key: "${TEST_WIRE_KEY}" }',
        rest: '{ paging: { pageSize: 25 } }',
        retry: '{ maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }',
      },
      { TEST_WIRE_KEY: 'plant-key-0001' },
    );
  });
  afterAll(() => close(r));

  it('sends the key on every page (offset paging), and a refused key is a FAILED run', async () => {
    const from = r.mes.trace.length;
    expect(await r.sync()).toMatchObject({ status: 'SUCCESS', fetched: 55, created: 55 });
    expect(r.mes.trace.slice(from)).toHaveLength(3); // 25 + 25 + 5
    expect(r.mes.unauthorized).toBe(0);
    r.mes.auth = { type: 'apiKey', header: 'X-Plant-Key', key: 'plant-key-0002' };
    const run = await r.sync();
    expect(run).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(run.errors[0].message).toMatch(/answered 401/);
    expect(r.mes.unauthorized).toBe(1);
  });
});

describe('a REST MES with an API key in the query, paged by next links', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig(
      { type: 'apiKey', queryParam: 'api_key', key: 'query-key-0001' },
      {
        auth: '{ type: apiKey, queryParam: api_key, key: "${TEST_WIRE_KEY}" }',
        rest: '{ paging: { style: nextLink, nextPath: links.next, pageSize: 30 } }',
        retry: '{ maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }',
      },
      { TEST_WIRE_KEY: 'query-key-0001' },
    );
  });
  afterAll(() => close(r));

  it(`adds the key to the MES's next link too, and never shows it in an error`, async () => {
    const from = r.mes.trace.length;
    expect(await r.sync()).toMatchObject({ status: 'SUCCESS', fetched: 55, created: 55 });
    expect(r.mes.trace.slice(from).map((c) => c.answered)).toEqual([200, 200]); // 30 + 25, the second by its link
    expect(r.mes.unauthorized).toBe(0);
    r.mes.auth = { type: 'apiKey', queryParam: 'api_key', key: 'query-key-0002' };
    const run = await r.sync();
    expect(run).toMatchObject({ status: 'FAILED', fetched: 0 });
    expect(run.errors[0].message).toMatch(/GET \/schedules answered 401/);
    expect(JSON.stringify(run)).not.toContain('query-key-0001');
  });
});
