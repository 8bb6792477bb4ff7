import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signUserToken } from '../../lib/auth/tokens.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { startSubgraph } from '../../app/start-subgraph.ts';
import { iot as iotSubgraph } from '../../subgraphs/iot/index.ts';
import { readSupergraph } from '../../lib/schema.ts';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { INTERNAL_SECRET, JWT_SECRET, type TestHub } from '../helpers/hub.ts';
import { extraGateway, startLiveTestHub, type LiveTestHub } from '../helpers/live-hub.ts';
import { until } from '../helpers/until.ts';
import { record, wsClient } from '../helpers/ws-client.ts';

/**
 * Federated subscriptions end to end, against the real Mosquitto and Postgres: MQTT → ingest pipeline →
 * live channel → iot/quality subgraphs (graphql-ws) → gateway (plan, dedupe, batched _entities) → graphql-ws
 * clients. A private live-channel prefix keeps parallel test files apart on the shared broker.
 */
const run = randomBytes(4).toString('hex');
const prefix = `oee-hub-t${run}/live`;
let live: LiveTestHub;
let hub: TestHub;
let admin: string;
let seq = 0;

/** Publishes one reading of `sensorId` at a unique time (so nothing is a duplicate), returns its value. */
async function publish(sensorId: string, value = 20 + (seq++ % 50)): Promise<number> {
  await live.publish(sensorId, value);
  return value;
}

/** A metric of a service; NaN while the service is down (a restart test polls through it). */
async function metric(url: string, name: string): Promise<number> {
  const text = await fetch(url.replace(/\/graphql$/, '/metrics'), { headers: { connection: 'close' } }).then(
    (r) => r.text(),
    () => '',
  );
  if (!text) return NaN;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}

beforeAll(async () => {
  live = await startLiveTestHub(run, prefix);
  hub = live.hub;
  admin = await hub.token({ role: 'admin' });
}, 60_000);

afterAll(() => live?.close());

const READINGS = `subscription($f: SensorReadingFilter) {
  sensorReadings(filter: $f) {
    value ts source
    sensor { id type unit }
    machine { id name line { id name currentWorkOrder { number product { name } } } openAlerts { type } }
    workOrder { number }
  }
}`;

describe('sensorReadings through the gateway', () => {
  it('delivers each reading with fields of production, quality and iot resolved', async () => {
    const client = wsClient(hub.url, admin);
    const sub = record(client, READINGS, { f: { machineIds: ['M-201'] } });
    await until(
      'upstream subscribed',
      () => metric(hub.subgraphUrls.iot, 'hub_live_subscriptions'),
      (n) => n >= 1,
    );
    const value = await publish('M-201-TEMP', 61.5);
    await until(
      'an event',
      async () => sub.events.length,
      (n) => n >= 1,
    );
    const e = sub.events[0];
    expect(e.errors).toBeUndefined();
    expect(e.data.sensorReadings).toMatchObject({
      value,
      source: 'MQTT',
      sensor: { id: 'M-201-TEMP', type: 'temperature' },
      machine: { id: 'M-201', name: 'CNC mill 201', line: { id: 'LINE-2', name: 'Machining line' } },
    });
    expect(Array.isArray(e.data.sensorReadings.machine.openAlerts)).toBe(true);
    expect(e.data.sensorReadings.machine.line.currentWorkOrder.number).toMatch(/^WO-/);
    expect(e.data.sensorReadings.workOrder.number).toMatch(/^WO-/);
    sub.dispose();
    await client.dispose();
  });
});

/** A second gateway process's worth of gateway (in this process), on the same subgraphs. */
const secondGateway = (extra: Parameters<typeof extraGateway>[1] = {}) => extraGateway(hub, extra);

/**
 * A client speaking the protocol by hand on a raw socket, so a test can stop reading it (`pause`): a frozen
 * dashboard, which the graphql-ws client library cannot play.
 */
async function rawClient(url: string, token: string) {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const frames: any[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  await until('ack', async () => frames.some((f) => f.type === 'connection_ack'), Boolean);
  const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  return {
    ws,
    frames,
    subscribe: (id: string, query: string) => ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query } })),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

const upstreams = () => metric(hub.url, 'hub_subscription_upstreams');
const liveSubs = () => metric(hub.subgraphUrls.iot, 'hub_live_subscriptions');

describe('filters and scope', () => {
  it('delivers only readings matching every filter list', async () => {
    const all = wsClient(hub.url, admin);
    const everything = record(all, `subscription { sensorReadings { value sensor { id } } }`);
    const filtered = record(
      all,
      `subscription($f: SensorReadingFilter) { sensorReadings(filter: $f) { value sensor { id } } }`,
      { f: { sensorTypes: ['vibration'], lineIds: ['LINE-1'] } },
    );
    await until('two upstreams', liveSubs, (n) => n >= 2);
    for (const id of ['M-101-TEMP', 'M-201-VIBR', 'M-102-VIBR', 'M-103-TEMP', 'M-101-VIBR']) await publish(id);
    await until(
      'all five through the catch-all',
      async () => everything.events.length,
      (n) => n >= 5,
    );
    // A matching marker published after the catch-all had all five: events of a group arrive in order, so any of
    // the three non-matching ones would be in `filtered` before it.
    const marker = await publish('M-102-VIBR', 7.75);
    await until(
      'the marker through the filtered one',
      async () => filtered.events.some((e) => e.data.sensorReadings.value === marker),
      Boolean,
    );
    const ids = filtered.events.map((e) => e.data.sensorReadings.sensor.id);
    expect(ids.slice(0, -1).sort()).toEqual(['M-101-VIBR', 'M-102-VIBR']);
    expect(filtered.events.at(-1).data.sensorReadings).toEqual({ value: marker, sensor: { id: 'M-102-VIBR' } });
    await all.dispose();
  });

  it(`never gives a line-scoped token another line's readings, \
and refuses a subscription outside its scope with FORBIDDEN`, async () => {
    const line1 = wsClient(hub.url, await hub.token({ role: 'viewer', lines: ['LINE-1'] }));
    const scoped = record(line1, `subscription { sensorReadings { sensor { id } machine { id line { id } } } }`);
    const refused = record(line1, `subscription { sensorReadings(filter: { machineIds: ["M-201"] }) { value } }`);
    await until('the refusal', async () => refused.errors, Boolean);
    expect(refused.errors![0].extensions.code).toBe('FORBIDDEN');
    const all = wsClient(hub.url, admin);
    const everything = record(all, `subscription { sensorReadings { sensor { id } } }`);
    await until('upstreams', liveSubs, (n) => n >= 2);
    await publish('M-202-TEMP');
    await publish('M-102-TEMP');
    await until(
      'both through the catch-all',
      async () => everything.events.length,
      (n) => n >= 2,
    );
    // A LINE-1 marker published after the catch-all had both: the LINE-2 reading, had it leaked, would come first.
    await publish('M-103-TEMP');
    await until(
      'the marker through the scoped one',
      async () => scoped.events.some((e) => e.data?.sensorReadings.sensor.id === 'M-103-TEMP'),
      Boolean,
    );
    // (A leaked reading would come as an event whose other-line machine resolves to nothing: data null.)
    expect(scoped.events.map((e) => e.data?.sensorReadings.sensor.id)).toEqual(['M-102-TEMP', 'M-103-TEMP']);
    expect(scoped.events.map((e) => e.data.sensorReadings.machine.line.id)).toEqual(['LINE-1', 'LINE-1']);
    await line1.dispose();
    await all.dispose();
  });

  it(`answers a malformed document with a graphql-ws error and keeps the socket serving its other \
subscriptions`, async () => {
    const client = wsClient(hub.url, admin);
    const good = record(client, `subscription { sensorReadings(filter: { machineIds: ["M-202"] }) { value } }`);
    const bad = record(client, `subscription { sensorReadings { nope } }`);
    const unparsable = record(client, `subscription { sensorReadings {`);
    await until('both errors', async () => bad.errors && unparsable.errors, Boolean);
    expect(bad.errors![0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(unparsable.errors![0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    await until('upstream', liveSubs, (n) => n >= 1);
    const v = await publish('M-202-VIBR', 4.2);
    await until(
      'the good one still flows',
      async () => good.events.length,
      (n) => n >= 1,
    );
    expect(good.events[0].data.sensorReadings.value).toBe(v);
    await client.dispose();
  });

  it('delivers an event that failed upstream as an event with errors, and the stream goes on', async () => {
    const client = wsClient(hub.url, admin);
    const sub = record(
      client,
      `subscription { sensorReadings(filter: { machineIds: ["M-101"] }) { value sensor { id } } }`,
    );
    await until('upstream', liveSubs, (n) => n >= 1);
    await publish('M-101-TEMP', 30.5);
    await until(
      'first',
      async () => sub.events.length,
      (n) => n === 1,
    );
    // A live message naming a sensor the hub does not know: its `sensor` cannot resolve (NOT_FOUND).
    const ghost = {
      sensorId: 'GHOST',
      sensorType: 'temperature',
      machineId: 'M-101',
      ts: new Date().toISOString(),
      value: 1,
      quality: 100,
      source: 'MQTT',
      workOrderId: null,
      operatorId: null,
    };
    await live.publisher.publishAsync(`${prefix}/readings/LINE-1`, JSON.stringify([ghost]));
    await until(
      'the failed event',
      async () => sub.events.length,
      (n) => n === 2,
    );
    expect(sub.events[1].data).toBeNull();
    expect(sub.events[1].errors[0].extensions.code).toBe('NOT_FOUND');
    await publish('M-101-TEMP', 31.5);
    await until(
      'the next good one',
      async () => sub.events.length,
      (n) => n === 3,
    );
    expect(sub.events[2].data.sensorReadings).toEqual({ value: 31.5, sensor: { id: 'M-101-TEMP' } });
    expect(sub.errors).toBeUndefined();
    await client.dispose();
  });

  it('runs queries over the same socket, through the same auth and executor as HTTP', async () => {
    const client = wsClient(hub.url, await hub.token({ role: 'viewer', lines: ['LINE-2'] }));
    const q = record(client, `query { lines { nodes { id } } }`);
    await until('the result', async () => q.completed, Boolean);
    expect(q.events).toEqual([{ data: { lines: { nodes: [{ id: 'LINE-2' }] } } }]);
    await client.dispose();
  });

  it('has subgraphs refuse subscriptions that bypass the gateway', async () => {
    for (const params of [{}, { internalToken: admin }, { authorization: `Bearer ${admin}` }]) {
      const direct = createClient({
        url: hub.subgraphUrls.iot!.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: params,
        retryAttempts: 0,
        lazy: true,
      });
      const sub = record(direct, `subscription { sensorReadings { value } }`);
      await until('refused', async () => sub.errors, Boolean);
      expect(sub.errors![0].code).toBe(4403);
      await direct.dispose();
    }
  });

  it('closes a connection when its token expires (4403), so the client must come back with a fresh one', async () => {
    const shortLived = await signUserToken(JWT_SECRET, { sub: 'brief', role: 'viewer' }, '2s');
    const client = wsClient(hub.url, shortLived);
    const sub = record(client, `subscription { sensorReadings(filter: { machineIds: ["M-103"] }) { value } }`);
    await until('closed at expiry', async () => sub.errors, Boolean, 10_000);
    expect(sub.errors![0].code).toBe(4403);
    await client.dispose();
  });

  it('refuses a connection without a valid token (4403) before any subscription', async () => {
    const client = wsClient(hub.url, 'not-a-jwt');
    const sub = record(client, `subscription { sensorReadings { value } }`);
    await until('closed', async () => sub.errors, Boolean);
    expect(sub.errors![0].code).toBe(4403);
  });
});

describe('groups, dedupe and lifecycle', () => {
  it('shares one upstream subscription among identical subscriptions, and closes it with the last member', async () => {
    await until('no groups left from earlier tests', upstreams, (n) => n === 0);
    const doc = `subscription($f: SensorReadingFilter) { sensorReadings(filter: $f) { value machine { name } } }`;
    const clients = await Promise.all(
      [1, 2, 3, 4, 5].map(async (i) => wsClient(hub.url, await hub.token({ role: 'admin', sub: `dash-${i}` }))),
    );
    const subs = clients.map((c) => record(c, doc, { f: { machineIds: ['M-203'] } }));
    await until(
      'five members',
      () => metric(hub.url, 'hub_subscription_members'),
      (n) => n === 5,
    );
    expect(await upstreams()).toBe(1);
    await until('one subgraph subscription', liveSubs, (n) => n === 1);
    const before = await metric(hub.url, 'hub_subscription_events_total');
    await publish('M-203-TEMP', 33.3);
    await until('all five', async () => subs.every((s) => s.events.length === 1), Boolean);
    for (const s of subs)
      expect(s.events[0].data.sensorReadings).toEqual({ value: 33.3, machine: { name: 'Washer 203' } });
    // One upstream event for five deliveries.
    expect((await metric(hub.url, 'hub_subscription_events_total')) - before).toBe(1);
    for (const s of subs.slice(0, 4)) s.dispose();
    await until(
      'one member',
      () => metric(hub.url, 'hub_subscription_members'),
      (n) => n === 1,
    );
    expect(await upstreams()).toBe(1);
    subs[4]!.dispose();
    await until('upstream closed with the last member', upstreams, (n) => n === 0);
    await until('subgraph released it too', liveSubs, (n) => n === 0);
    await Promise.all(clients.map((c) => c.dispose()));
  });

  it(`runs two gateways side by side, each correct, \
and completes subscriptions cleanly when one shuts down`, async () => {
    const gw2 = await secondGateway();
    const c1 = wsClient(hub.url, admin);
    const c2 = wsClient(gw2.url, admin);
    const doc = `subscription { sensorReadings(filter: { sensorIds: ["M-101-VIBR"] }) { value machine { name line {
      id } } } }`;
    const s1 = record(c1, doc);
    const s2 = record(c2, doc);
    await until('each gateway has its upstream', liveSubs, (n) => n === 2);
    const v = await publish('M-101-VIBR', 5.5);
    await until('both', async () => s1.events.length && s2.events.length, Boolean);
    expect(s1.events[0]).toEqual(s2.events[0]);
    expect(s2.events[0].data.sensorReadings).toEqual({
      value: v,
      machine: { name: 'Injection press 101', line: { id: 'LINE-1' } },
    });
    await gw2.close();
    await until('the second gateway completed its subscription', async () => s2.completed, Boolean);
    expect(s2.errors).toBeUndefined();
    await until('its upstream released', liveSubs, (n) => n === 1);
    const v2 = await publish('M-101-VIBR', 6.5);
    await until(
      'the first gateway still delivers',
      async () => s1.events.length,
      (n) => n === 2,
    );
    expect(s1.events[1].data.sensorReadings.value).toBe(v2);
    await c1.dispose();
    await c2.dispose();
  });

  it('ends subscriptions with SUBSCRIPTION_SCHEMA_RELOAD when the gateway is handed a changed supergraph', async () => {
    let loadSupergraph: ((sdl: string) => void) | undefined;
    const gw2 = await secondGateway({ supergraphUpdates: (load) => (loadSupergraph = load) });
    try {
      const client = wsClient(gw2.url, admin);
      const doc = `subscription { sensorReadings(filter: { machineIds: ["M-103"] }) { value operatorId } }`;
      const sub = record(client, doc);
      await until(
        'upstream',
        () => metric(gw2.url, 'hub_subscription_upstreams'),
        (n) => n === 1,
      );
      // A new supergraph that no longer exposes SensorReading.operatorId, loaded the way a supergraph source would.
      const current = readSupergraph();
      const changed = current.replace('  workOrder: WorkOrder\n  operatorId: String\n}', '  workOrder: WorkOrder\n}');
      expect(changed).not.toBe(current);
      loadSupergraph!(changed);
      await until('the reload error', async () => sub.errors, Boolean);
      expect(sub.errors![0].extensions.code).toBe('SUBSCRIPTION_SCHEMA_RELOAD');
      expect(await metric(gw2.url, 'hub_subscription_upstreams')).toBe(0);
      // The engine plans with the new supergraph now: the document it took a moment ago names a field gone from it.
      const again = record(client, doc);
      await until('the new planner refuses it', async () => again.errors, Boolean);
      expect(again.errors![0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(again.errors![0].message).toContain('operatorId');
      await client.dispose();
    } finally {
      await gw2.close();
    }
  });

  it('drops a client that stops answering pings, and only that one', async () => {
    const gw2 = await secondGateway({ pingIntervalMs: 300 });
    try {
      const healthy = wsClient(gw2.url, admin);
      const ok = record(healthy, `subscription { sensorReadings(filter: { machineIds: ["M-202"] }) { value } }`);
      const frozen = await rawClient(gw2.url, admin);
      frozen.subscribe('x', `subscription { sensorReadings(filter: { machineIds: ["M-202"] }) { value } }`);
      await until(
        'two members',
        () => metric(gw2.url, 'hub_subscription_members'),
        (n) => n === 2,
      );
      // A frozen client: its socket is never read again, so pongs never come back.
      frozen.pause();
      await until(
        'dropped',
        () => metric(gw2.url, 'hub_subscription_clients_dropped_total'),
        (n) => n === 1,
      );
      await until(
        'its subscription left',
        () => metric(gw2.url, 'hub_subscription_members'),
        (n) => n === 1,
      );
      const v = await publish('M-202-TEMP', 44.4);
      await until(
        'the healthy client still gets events',
        async () => ok.events.some((e) => e.data.sensorReadings.value === v),
        Boolean,
      );
      await healthy.dispose();
    } finally {
      await gw2.close();
    }
  });

  it('conflates for a slow client: it gets the newest events, never an unbounded queue', async () => {
    const gw2 = await secondGateway({ highWaterBytes: 4096 });
    try {
      const slow = await rawClient(gw2.url, admin);
      // ~10 KB per event (the time, 300 times over), so a paused reader fills the kernel's socket buffers fast.
      const big = `subscription { sensorReadings(filter: { machineIds: ["M-102"] }) { value machine { id }
        ${Array.from({ length: 300 }, (_, i) => `t${i}: ts`).join(' ')} } }`;
      slow.subscribe('slow', big);
      await until(
        'upstream',
        () => metric(gw2.url, 'hub_subscription_upstreams'),
        (n) => n === 1,
      );
      // Stop reading: the kernel buffers fill, then the gateway's socket buffer passes its high-water mark.
      slow.pause();
      const N = 3000;
      for (let i = 0; i < N; i++) void publish('M-102-TEMP', i);
      await until(
        'conflation',
        () => metric(gw2.url, 'hub_subscription_client_conflated_total'),
        (n) => n > 0,
        60_000,
      );
      slow.resume();
      await new Promise((r) => setTimeout(r, 1000));
      const last = await publish('M-102-TEMP', 123456);
      await until(
        'the newest event after the backlog',
        async () => slow.frames.some((f) => f.payload?.data?.sensorReadings?.value === last),
        Boolean,
        30_000,
      );
      const events = slow.frames.filter((f) => f.type === 'next');
      expect(events.length).toBeLessThan(N);
      expect(events.every((f) => f.id === 'slow' && f.payload.data.sensorReadings.machine.id === 'M-102')).toBe(true);
      slow.ws.close();
    } finally {
      await gw2.close();
    }
  }, 90_000);
});

describe('qualityAlerts through the gateway', () => {
  it('delivers a raised alert with its machine (production) and sensor (iot)', async () => {
    const client = wsClient(hub.url, admin);
    const sub = record(
      client,
      `subscription { qualityAlerts(filter: { machineIds: ["M-103"], type: [OUT_OF_RANGE] }) {
      id type severity value metric acknowledged machine { name line { id } } sensor { id name } } }`,
    );
    await until(
      'upstream',
      () => metric(hub.subgraphUrls.quality, 'hub_live_subscriptions'),
      (n) => n >= 1,
    );
    await publish('M-103-TEMP', 9999);
    await until(
      'the alert',
      async () => sub.events.length,
      (n) => n >= 1,
    );
    const a = sub.events[0].data.qualityAlerts;
    expect(a).toMatchObject({
      type: 'OUT_OF_RANGE',
      value: 9999,
      metric: 'temperature',
      acknowledged: false,
      machine: { name: 'Packer 103', line: { id: 'LINE-1' } },
      sensor: { id: 'M-103-TEMP' },
    });
    // The id is the stored alert's: it can be acknowledged through the API.
    const { body } = await hub.gql(admin, `mutation($id: ID!) { acknowledgeAlert(id: $id) { id acknowledged } }`, {
      id: a.id,
    });
    expect(body.data.acknowledgeAlert).toEqual({ id: a.id, acknowledged: true });
    await client.dispose();
  });
});

describe('when a subgraph restarts', () => {
  it('resubscribes when it comes back, and ends with UPSTREAM_UNAVAILABLE when it does not', async () => {
    const port = await freePort();
    const channel = { mqttUrl: inject('mqttUrl'), topicPrefix: prefix };
    let iot = await startSubgraph(iotSubgraph, {
      db: hub.db,
      internalSecret: INTERNAL_SECRET,
      host: '127.0.0.1',
      port,
      live: channel,
    });
    const gw = await secondGateway({ subgraphUrls: { ...hub.subgraphUrls, iot: iot.url }, upstreamGiveUpMs: 2500 });
    const client = wsClient(gw.url, admin);
    try {
      const sub = record(
        client,
        `subscription { sensorReadings(filter: { sensorIds: ["M-201-VIBR"] }) { value machine { name } } }`,
      );
      await until(
        'subscribed',
        () => metric(iot.url, 'hub_live_subscriptions'),
        (n) => n === 1,
      );
      await publish('M-201-VIBR', 1.5);
      await until(
        'first event',
        async () => sub.events.length,
        (n) => n === 1,
      );
      await iot.close();
      iot = await startSubgraph(iotSubgraph, {
        db: hub.db,
        internalSecret: INTERNAL_SECRET,
        host: '127.0.0.1',
        port,
        live: channel,
      });
      await until(
        'resubscribed to the restarted subgraph',
        () => metric(iot.url, 'hub_live_subscriptions'),
        (n) => n === 1,
      );
      await publish('M-201-VIBR', 2.5);
      await until(
        'events flow again',
        async () => sub.events.length,
        (n) => n === 2,
      );
      expect(sub.events[1].data.sensorReadings).toEqual({ value: 2.5, machine: { name: 'CNC mill 201' } });
      expect(sub.errors).toBeUndefined();
      await iot.close();
      await until('a clear error, not a hang', async () => sub.errors, Boolean, 20_000);
      expect(sub.errors![0].extensions.code).toBe('UPSTREAM_UNAVAILABLE');
    } finally {
      await client.dispose();
      await gw.close();
      await iot.close().catch(() => {});
    }
  }, 60_000);
});
