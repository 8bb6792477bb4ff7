import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { signInternalToken } from '../../lib/auth/tokens.ts';
import { INTERNAL_SECRET, startTestHub, type TestHub } from '../helpers/hub.ts';

let hub: TestHub;
beforeAll(async () => {
  hub = await startTestHub({ seed: true });
});
afterAll(() => hub?.close());

const code = (body: any) => body.errors?.[0]?.extensions?.code;

describe('authentication at the gateway', () => {
  it('refuses an operation without a token, with a garbage token and with a token signed by someone else', async () => {
    const none = await hub.gql(null, '{ sites { nodes { id } } }');
    expect(none.status).toBe(401);
    expect(code(none.body)).toBe('UNAUTHENTICATED');
    const garbage = await hub.gql('abc.def.ghi', '{ sites { nodes { id } } }');
    expect(code(garbage.body)).toBe('UNAUTHENTICATED');
    const forged = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-0123456789abcdef0123456789'));
    expect(code((await hub.gql(forged, '{ sites { nodes { id } } }')).body)).toBe('UNAUTHENTICATED');
  });

  it('refuses an expired token and one without a known role', async () => {
    const { JWT_SECRET } = await import('../helpers/hub.ts');
    const key = new TextEncoder().encode(JWT_SECRET);
    const expired = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(key);
    expect(code((await hub.gql(expired, '{ sites { nodes { id } } }')).body)).toBe('UNAUTHENTICATED');
    const noRole = await new SignJWT({ roles: ['superuser'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .setExpirationTime('1h')
      .sign(key);
    expect(code((await hub.gql(noRole, '{ sites { nodes { id } } }')).body)).toBe('UNAUTHENTICATED');
  });
});

describe('subgraphs refuse calls that bypass the gateway', () => {
  const post = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
    });

  it(`answers 401 UNAUTHENTICATED without the internal header, with a user token, \
or with a wrongly signed one`, async () => {
    const userToken = await hub.token({ role: 'admin' });
    const wrong = await signInternalToken('not-the-internal-secret-0123456789abcdef', { sub: 'x', role: 'admin' });
    for (const url of Object.values(hub.subgraphUrls)) {
      for (const headers of <Record<string, string>[]>[
        {},
        { authorization: `Bearer ${userToken}` },
        { 'x-hub-internal': userToken },
        { 'x-hub-internal': wrong },
      ]) {
        const res = await post(url, headers);
        expect(res.status).toBe(401);
        expect(code(await res.json())).toBe('UNAUTHENTICATED');
      }
    }
  });

  it('accepts the gateway-signed header (what the gateway sends)', async () => {
    const ok = await signInternalToken(INTERNAL_SECRET, { sub: 'gw', role: 'viewer' });
    const res = await post(hub.subgraphUrls.iot, { 'x-hub-internal': ok });
    expect(res.status).toBe(200);
    expect((await res.json()).data._service.sdl).toContain('type Sensor');
  });
});

describe('roles', () => {
  const createSensor = (id: string) =>
    `mutation { createSensor(input: { id: "${id}", name: "t", type: "pressure", unit: "bar", machineId: "M-102",
      protocol: HTTP, endpoint: "http://s.local/p", pollIntervalSeconds: 5 }) { id machine { name } } }`;
  const createMachine = (id: string) =>
    `mutation { createMachine(input: { id: "${id}", lineId: "LINE-1", name: "new" }) { id } }`;

  it('viewer reads everything but changes nothing', async () => {
    const t = await hub.token({ role: 'viewer' });
    expect((await hub.gql(t, '{ sensors { totalCount } }')).body.data.sensors.totalCount).toBe(12);
    expect(code((await hub.gql(t, createSensor('S-V'))).body)).toBe('FORBIDDEN');
    const alert = (await hub.gql(t, '{ alerts(filter: { acknowledged: false }) { nodes { id } } }')).body.data.alerts
      .nodes[0];
    expect(code((await hub.gql(t, `mutation { acknowledgeAlert(id: "${alert.id}") { id } }`)).body)).toBe('FORBIDDEN');
    expect(code((await hub.gql(t, '{ auditLog { nodes { id } } }')).body)).toBe('FORBIDDEN');
  });

  it('operator acknowledges alerts and updates work orders, but configures nothing', async () => {
    const t = await hub.token({ role: 'operator', sub: 'olga' });
    const alert = (await hub.gql(t, '{ alerts(filter: { acknowledged: false, machineId: "M-202" }) { nodes { id } } }'))
      .body.data.alerts.nodes[0];
    const ack = await hub.gql(t, `mutation { acknowledgeAlert(id: "${alert.id}") { acknowledged acknowledgedBy } }`);
    expect(ack.body.data.acknowledgeAlert).toEqual({ acknowledged: true, acknowledgedBy: 'olga' });
    const wo = (await hub.gql(t, '{ line(id: "LINE-1") { currentWorkOrder { id } } }')).body.data.line.currentWorkOrder;
    const upd = await hub.gql(
      t,
      `mutation { updateWorkOrder(id: "${wo.id}", input: { actualQuantity: 120 }) { actualQuantity } }`,
    );
    expect(upd.body.data.updateWorkOrder.actualQuantity).toBe(120);
    expect(code((await hub.gql(t, createSensor('S-O'))).body)).toBe('FORBIDDEN');
  });

  it('engineer configures sensors, rules and mappings but not the plant hierarchy', async () => {
    const t = await hub.token({ role: 'engineer' });
    const s = await hub.gql(t, createSensor('S-E'));
    expect(s.body.errors).toBeUndefined();
    expect(s.body.data.createSensor).toEqual({ id: 'S-E', machine: { name: 'Robot cell 102' } });
    expect(code((await hub.gql(t, createMachine('M-E'))).body)).toBe('FORBIDDEN');
  });

  it('admin changes the hierarchy; duplicates are CONFLICT and dangling references BAD_USER_INPUT', async () => {
    const t = await hub.token({ role: 'admin' });
    expect((await hub.gql(t, createMachine('M-A'))).body.data.createMachine.id).toBe('M-A');
    expect(code((await hub.gql(t, createMachine('M-A'))).body)).toBe('CONFLICT');
    const dangling = await hub.gql(
      t,
      `mutation { createMachine(input: { id: "M-X", lineId: "NO-SUCH-LINE", name: "x" }) { id } }`,
    );
    expect(code(dangling.body)).toBe('BAD_USER_INPUT');
    const badId = await hub.gql(t, `mutation { createSite(input: { id: "has spaces", name: "x" }) { id } }`);
    expect(code(badId.body)).toBe('BAD_USER_INPUT');
  });
});

describe('row scope from the token (sites/lines claims)', () => {
  it('a LINE-1 token lists only LINE-1 rows in every subgraph', async () => {
    const t = await hub.token({ role: 'engineer', lines: ['LINE-1'] });
    const { body } = await hub.gql(
      t,
      `{
      lines { nodes { id } } machines { nodes { id line { id } } } sensors(first: 100) { nodes { id machine { id } } }
      workOrders(first: 100) { nodes { line { id } } } shifts(first: 100) { nodes { line { id } } }
      tagMappings { nodes { machine { id } } } alerts { nodes { machine { id } } } rangeRules(first: 100) { nodes {
      machine { id } } }
    }`,
    );
    expect(body.errors).toBeUndefined();
    const d = body.data;
    expect(d.lines.nodes).toEqual([{ id: 'LINE-1' }]);
    expect(d.machines.nodes.map((m: any) => m.id)).toEqual(expect.arrayContaining(['M-101', 'M-102', 'M-103']));
    for (const m of d.machines.nodes) expect(m.line.id).toBe('LINE-1');
    const l1 = d.machines.nodes.map((m: any) => m.id);
    // Each list must hold LINE-1's rows of the demo seed (app/demo/seed.ts), so the loops below check something:
    // two sensors and two range rules per machine, one tag mapping per machine, 7 days × 3 shifts, a week of
    // 8-hour work orders, and the one open alert on M-101.
    const bySeed = (...ids: string[]) => ids.flatMap((m) => [`${m}-TEMP`, `${m}-VIBR`]);
    expect(d.sensors.nodes.map((s: any) => s.id)).toEqual(expect.arrayContaining(bySeed('M-101', 'M-102', 'M-103')));
    expect(d.rangeRules.nodes.map((r: any) => r.machine.id).sort()).toEqual([
      'M-101',
      'M-101',
      'M-102',
      'M-102',
      'M-103',
      'M-103',
    ]);
    expect(d.tagMappings.nodes.map((t: any) => t.machine.id).sort()).toEqual(['M-101', 'M-102', 'M-103']);
    expect(d.alerts.nodes.map((a: any) => a.machine.id)).toEqual(['M-101']);
    expect(d.workOrders.nodes).toHaveLength(21);
    expect(d.shifts.nodes).toHaveLength(21);
    for (const s of d.sensors.nodes) expect(l1).toContain(s.machine.id);
    for (const w of [...d.workOrders.nodes, ...d.shifts.nodes]) expect(w.line.id).toBe('LINE-1');
    for (const x of [...d.tagMappings.nodes, ...d.alerts.nodes, ...d.rangeRules.nodes])
      expect(l1).toContain(x.machine.id);
  });

  it('refuses direct ids on another line with FORBIDDEN, for reads and writes', async () => {
    const t = await hub.token({ role: 'admin', lines: ['LINE-1'] });
    for (const q of [
      '{ line(id: "LINE-2") { id } }',
      '{ machine(id: "M-201") { id } }',
      '{ sensor(id: "M-201-TEMP") { id } }',
    ]) {
      const { body } = await hub.gql(t, q);
      expect(code(body), q).toBe('FORBIDDEN');
      expect(body.data?.[Object.keys(body.data ?? {})[0]!] ?? null, q).toBeNull();
    }
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date().toISOString();
    expect(
      code(
        (await hub.gql(t, `{ readings(machineId: "M-201", from: "${from}", to: "${to}") { nodes { value } } }`)).body,
      ),
    ).toBe('FORBIDDEN');
    expect(
      code(
        (await hub.gql(t, `mutation { createMachine(input: { id: "M-S", lineId: "LINE-2", name: "x" }) { id } }`)).body,
      ),
    ).toBe('FORBIDDEN');
    expect(
      code((await hub.gql(t, `mutation { updateSensor(id: "M-201-TEMP", input: { name: "x" }) { id } }`)).body),
    ).toBe('FORBIDDEN');
  });

  it('a site-scoped token for another site sees nothing', async () => {
    const t = await hub.token({ role: 'viewer', sites: ['SITE-9'] });
    const { body } = await hub.gql(
      t,
      '{ sites { nodes { id } } machines { totalCount } sensors { totalCount } alerts { totalCount } }',
    );
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      sites: { nodes: [] },
      machines: { totalCount: 0 },
      sensors: { totalCount: 0 },
      alerts: { totalCount: 0 },
    });
  });
});

describe('audit log', () => {
  it('records successful and refused mutations with who, what, when and outcome', async () => {
    const eng = await hub.token({ role: 'engineer', sub: 'erin' });
    await hub.gql(eng, `mutation { createProduct(input: { id: "P-AUD", name: "audited" }) { id } }`);
    await hub.gql(eng, `mutation { createLine(input: { id: "LINE-AUD", siteId: "SITE-1", name: "x" }) { id } }`);
    const admin = await hub.token({ role: 'admin' });
    const { body } = await hub.gql(
      admin,
      `{ auditLog(filter: { actor: "erin" }) { nodes { actor roles service operation target outcome errorCode at
        requestId } } }`,
    );
    expect(body.errors).toBeUndefined();
    const entries = body.data.auditLog.nodes;
    expect(entries).toEqual([
      expect.objectContaining({
        actor: 'erin',
        roles: ['engineer'],
        service: 'production',
        operation: 'createLine',
        target: 'LINE-AUD',
        outcome: 'FAILURE',
        errorCode: 'FORBIDDEN',
      }),
      expect.objectContaining({
        actor: 'erin',
        service: 'production',
        operation: 'createProduct',
        target: 'P-AUD',
        outcome: 'SUCCESS',
        errorCode: null,
      }),
    ]);
    expect(Date.now() - Date.parse(entries[0].at)).toBeLessThan(60_000);
    expect(entries[0].requestId).toMatch(/[0-9a-f-]{36}/);
  });
});
