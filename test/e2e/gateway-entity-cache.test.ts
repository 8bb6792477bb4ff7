import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestHub } from '../helpers/hub.ts';
import { extraGateway, startLiveTestHub, type LiveTestHub } from '../helpers/live-hub.ts';
import { until } from '../helpers/until.ts';
import { record, wsClient } from '../helpers/ws-client.ts';

/**
 * The gateway's entity cache for subscription events (`entityCacheMs`, docs/subscriptions.md "Entities"): a
 * machine's name comes from the production subgraph with every event, and may be reused for `entityCacheMs`;
 * 0 turns the cache off. Readings go the real way: MQTT → ingest → live channel → iot subgraph → gateway.
 */
const run = randomBytes(4).toString('hex');
const prefix = `oee-hub-t${run}/live`;
let live: LiveTestHub;
let hub: TestHub;
let admin: string;

const publish = (sensorId: string, value: number) => live.publish(sensorId, value);

beforeAll(async () => {
  live = await startLiveTestHub(run, prefix);
  hub = live.hub;
  admin = await hub.token({ role: 'admin' });
}, 60_000);

afterAll(() => live?.close());

/** Subscriptions the iot subgraph serves (the hub's own gateway opens none here). */
async function liveSubscriptions(): Promise<number> {
  const text = await (await fetch(hub.subgraphUrls.iot!.replace(/\/graphql$/, '/metrics'))).text();
  return Number(/^hub_live_subscriptions\{[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

const gatewayWithCache = (entityCacheMs: number) => extraGateway(hub, { entityCacheMs });

/**
 * Subscribes to one machine's readings with its name, lets one event through, renames the machine through the
 * API, and returns the machine name each of the two events carried.
 */
async function namesAroundARename(gatewayUrl: string, machineId: string, newName: string): Promise<string[]> {
  const client = wsClient(gatewayUrl, admin);
  try {
    const sub = record(
      client,
      `subscription($f: SensorReadingFilter) { sensorReadings(filter: $f) { value machine { name } } }`,
      { f: { machineIds: [machineId] } },
    );
    await until('the subscription reached the subgraph', liveSubscriptions, (n) => n === 1);
    await publish(`${machineId}-TEMP`, 41);
    await until(
      'the first event',
      async () => sub.events.length,
      (n) => n === 1,
    );
    const renamed = await hub.gql(
      admin,
      `mutation($id: ID!, $name: String!) { updateMachine(id: $id, input: { name: $name }) { name } }`,
      { id: machineId, name: newName },
    );
    expect(renamed.body).toEqual({ data: { updateMachine: { name: newName } } });
    await publish(`${machineId}-TEMP`, 42);
    await until(
      'the second event',
      async () => sub.events.length,
      (n) => n === 2,
    );
    expect(sub.events.map((e) => e.data.sensorReadings.value)).toEqual([41, 42]);
    return sub.events.map((e) => e.data.sensorReadings.machine.name);
  } finally {
    await client.dispose();
    await until('the subscription released', liveSubscriptions, (n) => n === 0);
  }
}

describe('entity cache of subscription events', () => {
  it('with entityCacheMs: 0, the event right after a change carries the changed value', async () => {
    const gw = await gatewayWithCache(0);
    try {
      // Names from the demo seed (app/demo/seed.ts).
      expect(await namesAroundARename(gw.url, 'M-203', 'Washer 203 (new)')).toEqual(['Washer 203', 'Washer 203 (new)']);
    } finally {
      await gw.close();
    }
  });

  it('with the cache on, the event right after a change still carries the cached value', async () => {
    const gw = await gatewayWithCache(60_000);
    try {
      expect(await namesAroundARename(gw.url, 'M-202', 'CNC lathe 202 (new)')).toEqual([
        'CNC lathe 202',
        'CNC lathe 202',
      ]);
    } finally {
      await gw.close();
    }
  });
});
