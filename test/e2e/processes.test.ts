import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { signUserToken } from '../../lib/auth/tokens.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { createTestDatabase, INTERNAL_SECRET, JWT_SECRET } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { record, wsClient } from '../helpers/ws-client.ts';

/**
 * Each subgraph and the gateway as its own process, configured only through the environment, as
 * docker-compose.yml runs them: `tsx bin/hub.ts <role>`.
 */
const children: ChildProcess[] = [];
let gatewayUrl: string;
let gatewayEnv: Record<string, string>;
let gatewayChild: ChildProcess;
let iotUrl: string;
let drop: () => Promise<void>;

async function waitHealthy(url: string, child: ChildProcess, log: () => string) {
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`process exited early:\n${log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not healthy in time: ${url}\n${log()}`);
}

function start(role: string, env: Record<string, string>) {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/hub.ts', role], {
    env: {
      ...process.env,
      ...env,
      HUB_JWT_SECRET: JWT_SECRET,
      HUB_INTERNAL_SECRET: INTERNAL_SECRET,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  children.push(child);
  return { child, log: () => out };
}

beforeAll(async () => {
  const database = await createTestDatabase();
  drop = database.drop;
  const urls: Record<string, string> = {};
  // Migrations first, once, as `npm run migrate` would; the subgraphs then find the schema in place.
  const migrate = start('migrate', { DATABASE_URL: database.url });
  await new Promise((r) => migrate.child.on('exit', r));
  expect(migrate.child.exitCode, migrate.log()).toBe(0);
  await Promise.all(
    ['production', 'historian', 'iot', 'quality'].map(async (name) => {
      const port = await freePort();
      const p = start(name, {
        DATABASE_URL: database.url,
        HUB_CONFIG_DIR: '',
        PORT: String(port),
        MQTT_URL: inject('mqttUrl'),
      });
      urls[name] = `http://127.0.0.1:${port}`;
      await waitHealthy(`${urls[name]}/healthz`, p.child, p.log);
    }),
  );
  const gwPort = await freePort();
  const env: Record<string, string> = { PORT: String(gwPort) };
  for (const [name, url] of Object.entries(urls)) env[`HUB_${name.toUpperCase()}_URL`] = `${url}/graphql`;
  gatewayEnv = env;
  iotUrl = urls.iot!;
  const gw = start('gateway', env);
  gatewayChild = gw.child;
  gatewayUrl = `http://127.0.0.1:${gwPort}/graphql`;
  await waitHealthy(`http://127.0.0.1:${gwPort}/readyz`, gw.child, gw.log);
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : null)));
  await drop?.();
});

describe('one process per role', () => {
  it('serves a mutation in production and a cross-subgraph query through the separate gateway', async () => {
    const token = await signUserToken(JWT_SECRET, { sub: 'ops', role: 'admin' });
    const gql = async (query: string) =>
      (
        await fetch(gatewayUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query }),
        })
      ).json() as Promise<any>;
    expect((await gql('mutation { createSite(input: { id: "S", name: "Plant" }) { id } }')).errors).toBeUndefined();
    expect(
      (await gql('mutation { createLine(input: { id: "L", siteId: "S", name: "Line" }) { id } }')).errors,
    ).toBeUndefined();
    expect(
      (await gql('mutation { createMachine(input: { id: "M", lineId: "L", name: "Press" }) { id } }')).errors,
    ).toBeUndefined();
    const q = await gql(
      '{ machine(id: "M") { name line { name } sensors { id } tagMappings { id } openAlerts { id } } }',
    );
    expect(q).toEqual({
      data: { machine: { name: 'Press', line: { name: 'Line' }, sensors: [], tagMappings: [], openAlerts: [] } },
    });
  });

  it('serves subscriptions from two gateway processes side by side, each with its own upstream', async () => {
    const token = await signUserToken(JWT_SECRET, { sub: 'ops', role: 'admin' });
    const created = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation { createSensor(input: { id: "M-T", name: "Press temperature", type: "temperature",
          unit: "degC",
            machineId: "M", protocol: MQTT }) { id } }`,
      }),
    }).then((r) => r.json() as Promise<any>);
    expect(created.errors).toBeUndefined();
    const port = await freePort();
    const second = start('gateway', { ...gatewayEnv, PORT: String(port) });
    await waitHealthy(`http://127.0.0.1:${port}/readyz`, second.child, second.log);
    const doc = `subscription { sensorReadings(filter: { machineIds: ["M"] }) { value sensor { id } machine { name line
      { name } } } }`;
    const clients = [wsClient(gatewayUrl, token), wsClient(`http://127.0.0.1:${port}/graphql`, token)];
    const subs = clients.map((c) => record(c, doc));
    const liveSubs = async () => {
      const text = await fetch(`${iotUrl}/metrics`).then((r) => r.text());
      return Number(/^hub_live_subscriptions\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    await until('one upstream per gateway process', liveSubs, (n) => n === 2);
    // What ingest publishes after a commit (lib/telemetry/live.ts), straight onto the live channel.
    const pub = await mqtt.connectAsync(inject('mqttUrl'));
    const reading = {
      sensorId: 'M-T',
      sensorType: 'temperature',
      machineId: 'M',
      ts: new Date().toISOString(),
      value: 71.5,
      quality: 100,
      source: 'MQTT',
      workOrderId: null,
      operatorId: null,
    };
    await pub.publishAsync('oee-hub/live/readings/L', JSON.stringify([reading]));
    await until('both gateways deliver', async () => subs.every((s) => s.events.length === 1), Boolean);
    for (const s of subs)
      expect(s.events[0]).toEqual({
        data: {
          sensorReadings: { value: 71.5, sensor: { id: 'M-T' }, machine: { name: 'Press', line: { name: 'Line' } } },
        },
      });
    await pub.endAsync();
    for (const c of clients) await c.dispose();
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.on('exit', r));
  });

  it('stops on SIGTERM', async () => {
    const c = gatewayChild;
    c.kill('SIGTERM');
    await new Promise((r) => c.on('exit', r));
    expect(c.exitCode).toBe(0);
  });
});

describe('a bad configuration stops the start', () => {
  it('exits 1 and names the file, the key and the problem', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'hub-badcfg-'));
    writeFileSync(join(dir, 'hub.yml'), 'gateway:\n  port: not-a-port\n');
    const p = start('gateway', { HUB_CONFIG_DIR: dir });
    const code = await new Promise((r) => p.child.on('exit', r));
    expect(code).toBe(1);
    expect(p.log()).toContain(`configuration error: ${dir}/hub.yml: gateway.port:`);
  });
});
