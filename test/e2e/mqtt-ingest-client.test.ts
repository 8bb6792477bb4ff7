import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/embedded/free-port.ts';
import {
  MqttIngestClient,
  type IngestClientOptions,
  type InboundMessage,
  MAX_RECEIVE_WINDOW,
} from '../../lib/mqtt/ingest-client.ts';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.ts';

/**
 * MqttIngestClient against a private Mosquitto per test. No timing assertions: "nothing more arrives" is
 * shown by publishing a sentinel and waiting for it, since a broker sends a session's redeliveries (and
 * everything queued before) ahead of it.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
});

async function broker(opts?: { persistence?: boolean }): Promise<MosquittoBroker> {
  const b = await startMosquitto(opts);
  cleanups.push(() => b.stop());
  return b;
}

interface Sink {
  client: MqttIngestClient;
  received: InboundMessage[];
  batches: number;
  errors: Error[];
  payloads(): string[];
  /** start() and wait for the SUBACK, so what is published next is routed to us. */
  start(): Promise<{ sessionPresent: boolean }>;
}

function sink(
  b: MosquittoBroker,
  clientId: string,
  filter: string,
  opts: { autoAck?: boolean; onBatch?: (msgs: InboundMessage[]) => void } & Partial<IngestClientOptions> = {},
): Sink {
  const { autoAck = false, onBatch, ...clientOpts } = opts;
  const s: Sink = {
    received: [],
    batches: 0,
    errors: [],
    payloads: () => s.received.map((m) => m.payload.toString()),
    client: new MqttIngestClient(
      {
        url: b.url,
        clientId,
        subscriptions: [{ filter, qos: 1 }],
        connectTimeoutMs: 5000,
        reconnect: { minMs: 100, maxMs: 1000 },
        ...clientOpts,
      },
      (msgs) => {
        s.batches++;
        s.received.push(...msgs);
        if (autoAck) s.client.ack(msgs);
        onBatch?.(msgs);
      },
    ),
    async start() {
      const subscribed = once(s.client, 'subscribed');
      const res = await s.client.start();
      await subscribed;
      return res;
    },
  };
  s.client.on('error', (err) => s.errors.push(err));
  cleanups.push(() => s.client.stop());
  return s;
}

async function publish(url: string, topic: string, payloads: string[]): Promise<void> {
  const pub = await mqtt.connectAsync(url, { protocolVersion: 5, connectTimeout: 5000, reconnectPeriod: 0 });
  try {
    await Promise.all(payloads.map((p) => pub.publishAsync(topic, p, { qos: 1 })));
  } finally {
    await pub.endAsync();
  }
}

/** A QoS 1 round trip on the client's own connection: once it is back, the broker has read our earlier PUBACKs. */
async function brokerHasReadOurAcks(c: MqttIngestClient): Promise<void> {
  await c.publish('sync/ack-barrier', 'x', { qos: 1 });
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const V5 = { protocolVersion: 5 };

async function listen(onConnection: (sock: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const srv = createServer((sock) => {
    sockets.add(sock);
    onConnection(sock);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const sock of sockets) sock.destroy();
    return new Promise((r) => srv.close(() => r()));
  });
  return (srv.address() as { port: number }).port;
}

const range = (from: number, to: number, prefix = 'm') =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe('MqttIngestClient (real Mosquitto)', () => {
  it('hands a drain over in socket-sized batches, far fewer than its messages', async () => {
    const b = await broker();
    const first = sink(b, 'ingest-batch', 'tb/#');
    await first.start();
    await first.client.stop();
    // Queued while the client is away, so the broker sends them back to back as soon as it returns.
    const sent = range(0, 5000);
    await publish(b.url, 'tb/x', sent);
    const s = sink(b, 'ingest-batch', 'tb/#', { autoAck: true });
    expect(await s.start()).toEqual({ sessionPresent: true });
    await waitFor('5000 messages', () => s.received.length === 5000);
    expect(s.payloads().sort()).toEqual([...sent].sort());
    // One callback per socket chunk: a client that hands over a message at a time would make 5000. How many
    // messages a chunk holds depends on the load (a busy CI machine reads smaller chunks: 253 seen once), so the
    // bound is ten a callback on average, far from one.
    expect(s.batches).toBeLessThan(5000 / 10);
  });

  it('receives messages in batches, acks them, and gets none again after reconnecting', async () => {
    const b = await broker();
    const a = sink(b, 'ingest-1', 't1/#');
    expect(await a.start()).toEqual({ sessionPresent: false });

    const sent = range(0, 500);
    await publish(b.url, 't1/x', sent);
    await waitFor('500 messages', () => a.received.length === 500);
    expect(a.payloads().sort()).toEqual([...sent].sort());
    const wellFormed = (m: InboundMessage) => m.qos === 1 && m.messageId !== undefined && !m.dup && m.topic === 't1/x';
    expect(a.received.every(wellFormed)).toBe(true);
    expect(a.client.stats).toMatchObject({ received: 500, acked: 0, inFlight: 500 });

    a.client.ack(a.received);
    expect(a.client.stats).toMatchObject({ acked: 500, inFlight: 0 });
    await brokerHasReadOurAcks(a.client);
    await a.client.stop();

    const again = sink(b, 'ingest-1', 't1/#', { autoAck: true });
    expect(await again.start()).toEqual({ sessionPresent: true });
    await publish(b.url, 't1/x', ['sentinel']);
    await waitFor('sentinel', () => again.payloads().includes('sentinel'));
    expect(again.payloads()).toEqual(['sentinel']);
    expect(a.errors).toEqual([]);
  });

  it('redelivers exactly the unacked messages after a stop and a new client with the same clientId', async () => {
    const b = await broker();
    const a = sink(b, 'ingest-2', 't2/#');
    await a.start();
    const sent = range(0, 100);
    await publish(b.url, 't2/x', sent);
    await waitFor('100 messages', () => a.received.length === 100);
    a.client.ack(a.received.slice(0, 40));
    await brokerHasReadOurAcks(a.client);
    await a.client.stop();

    const again = sink(b, 'ingest-2', 't2/#', { autoAck: true });
    expect(await again.start()).toEqual({ sessionPresent: true });
    await publish(b.url, 't2/x', ['sentinel']);
    await waitFor('sentinel', () => again.payloads().includes('sentinel'));
    expect(again.payloads()).toEqual([...sent.slice(40), 'sentinel']);
    expect(again.received.slice(0, 60).every((m) => m.dup)).toBe(true);
  });

  it('after a dropped connection (as in a crash) reconnects and gets exactly the unacked ones again', async () => {
    const b = await broker();
    const a = sink(b, 'ingest-2b', 't2b/#');
    await a.start();
    const sent = range(0, 100);
    await publish(b.url, 't2b/x', sent);
    await waitFor('100 messages', () => a.received.length === 100);
    // Acked out of order, and through copies: the PUBACKs still go in arrival order, so 30..39 wait for 0..29.
    a.client.ack(a.received.slice(30, 40).map((m) => ({ ...m })));
    expect(a.client.stats.acked).toBe(0);
    a.client.ack(a.received.slice(0, 30));
    expect(a.client.stats.acked).toBe(40);
    await brokerHasReadOurAcks(a.client);
    const firstDelivery = a.received.splice(0);

    const reconnected = once(a.client, 'connect');
    a.client.reconnect('simulated crash');
    expect(await reconnected).toEqual([{ sessionPresent: true }]);
    await waitFor('60 redelivered', () => a.received.length === 60);
    expect(a.payloads()).toEqual(sent.slice(40));

    // Acks for the old connection's copies are skipped: the broker only knows the new ones.
    a.client.ack(firstDelivery);
    expect(a.client.stats).toMatchObject({ acked: 40, inFlight: 60, reconnects: 1 });
    a.client.ack(a.received);
    expect(a.client.stats).toMatchObject({ acked: 100, inFlight: 0 });
    await brokerHasReadOurAcks(a.client);
    await a.client.stop();

    const again = sink(b, 'ingest-2b', 't2b/#', { autoAck: true });
    await again.start();
    await publish(b.url, 't2b/x', ['sentinel']);
    await waitFor('sentinel', () => again.payloads().includes('sentinel'));
    expect(again.payloads()).toEqual(['sentinel']);
  });

  it('gets the messages published while it was offline (session expiry > 0)', async () => {
    const b = await broker();
    const a = sink(b, 'ingest-3', 't3/#', { sessionExpirySeconds: 3600 });
    await a.start();
    await a.client.stop();

    const sent = range(0, 300);
    await publish(b.url, 't3/x', sent);

    const again = sink(b, 'ingest-3', 't3/#', { sessionExpirySeconds: 3600, autoAck: true });
    expect(await again.start()).toEqual({ sessionPresent: true });
    await waitFor('300 queued messages', () => again.received.length === 300);
    expect(again.payloads()).toEqual(sent);
  });

  it('survives a broker restart mid-stream (persistence on): every payload arrives', { timeout: 90_000 }, async () => {
    const b = await broker({ persistence: true });
    // A pipeline that commits 50 messages every 10 ms, slow enough for the restart to land mid-stream.
    const queue: InboundMessage[] = [];
    const a = sink(b, 'ingest-4', 't4/#', { onBatch: (msgs) => queue.push(...msgs) });
    await a.start();
    const committer = setInterval(() => a.client.ack(queue.splice(0, 50)), 10);
    cleanups.push(async () => clearInterval(committer));

    const before = range(0, 2000, 'a');
    await publish(b.url, 't4/x', before);
    await waitFor('some of the stream', () => a.received.length >= 300);
    const acksBefore = a.client.stats.acked;
    await b.restart();
    await waitFor('automatic reconnect', () => a.client.stats.reconnects >= 1, 30_000);
    expect(acksBefore).toBeLessThan(2000);

    const after = range(0, 1000, 'b');
    await publish(b.url, 't4/x', after);
    const expected = new Set([...before, ...after]);
    await waitFor('every payload', () => new Set(a.payloads()).size === expected.size, 60_000);
    await waitFor('everything acked', () => queue.length === 0 && a.client.stats.inFlight === 0);
    expect(new Set(a.payloads())).toEqual(expected);
  });

  it('splits a $share group between two clients: each gets part, together all, none twice', async () => {
    const b = await broker();
    const x = sink(b, 'ingest-5a', '$share/g/t5/#', { autoAck: true });
    const y = sink(b, 'ingest-5b', '$share/g/t5/#', { autoAck: true });
    await x.start();
    await y.start();

    const sent = range(0, 1000);
    await publish(b.url, 't5/x', sent);
    await waitFor('all 1000 between them', () => x.received.length + y.received.length >= 1000);
    expect(x.received.length).toBeGreaterThan(0);
    expect(y.received.length).toBeGreaterThan(0);
    expect([...x.payloads(), ...y.payloads()].sort()).toEqual([...sent].sort());
  });

  it('holds at most receiveMaximum unacked messages (plus one socket read), though Mosquitto sends more', async () => {
    const b = await broker();
    let maxInFlight = 0;
    const a: Sink = sink(b, 'ingest-8', 't8/#', {
      receiveMaximum: 100,
      onBatch: (msgs) => {
        maxInFlight = Math.max(maxInFlight, a.client.stats.inFlight);
        setTimeout(() => a.client.ack(msgs), 1);
      },
    });
    await a.start();
    const pad = 'x'.repeat(1000); // ~1 kB messages: a 64 kB socket read holds at most ~64 of them
    const sent = range(0, 3000).map((p) => `${p}:${pad}`);
    await publish(b.url, 't8/x', sent);
    await waitFor('3000 acked', () => a.client.stats.acked === 3000);
    expect(a.received.length).toBe(3000);
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(100 + 64);
  });

  it('start() rejects clearly on CONNACK refusal, on an unreachable broker and on a silent one', async () => {
    // Mosquitto with allow_anonymous refuses next to nothing (and an empty client id never leaves the client),
    // so the refusal comes from a stand-in broker that answers every CONNECT with 0x86.
    const refuser = await listen((sock) => {
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      parser.on('packet', (p: Packet) => {
        if (p.cmd !== 'connect') return;
        const props = { reasonString: 'who are you?' };
        const connack = { cmd: 'connack', sessionPresent: false, reasonCode: 0x86, properties: props } as const;
        sock.end(mqttPacket.generate(connack, V5));
      });
      sock.on('data', (d) => parser.parse(d));
    });
    const refused = new MqttIngestClient(
      {
        url: `mqtt://127.0.0.1:${refuser}`,
        clientId: 'c6',
        username: 'u',
        password: 'wrong',
        subscriptions: [{ filter: 'x', qos: 1 }],
      },
      () => {},
    );
    await expect(refused.start()).rejects.toThrow(
      /as c6 failed: broker refused the connection: CONNACK 0x86 Bad user name or password \(who are you\?\)/,
    );
    const noId = { url: `mqtt://127.0.0.1:${refuser}`, clientId: '', subscriptions: [] };
    expect(() => new MqttIngestClient(noId, () => {})).toThrow(/clientId is required/);

    const port = await freePort();
    const unreachable = new MqttIngestClient(
      { url: `mqtt://127.0.0.1:${port}`, clientId: 'c6', subscriptions: [{ filter: 'x', qos: 1 }] },
      () => {},
    );
    await expect(unreachable.start()).rejects.toThrow(
      new RegExp(`mqtt://127.0.0.1:${port} as c6 failed: .*ECONNREFUSED`),
    );

    const silentPort = await listen(() => {}); // accepts, never answers
    const timedOut = new MqttIngestClient(
      {
        url: `mqtt://127.0.0.1:${silentPort}`,
        clientId: 'c6',
        subscriptions: [{ filter: 'x', qos: 1 }],
        connectTimeoutMs: 300,
      },
      () => {},
    );
    await expect(timedOut.start()).rejects.toThrow(/no CONNACK within 300 ms/);
  });

  it('reports a refused subscription, a missing PINGRESP and a broker DISCONNECT, and reconnects', async () => {
    // Stand-in broker. 1st connection: refuses the second filter, never answers PINGREQ. 2nd: DISCONNECT 0x8b.
    // (Mosquitto 2.0.11 sends no DISCONNECT even on session takeover; it just closes.)
    let connections = 0;
    const port = await listen((sock) => {
      const n = ++connections;
      const parser = mqttPacket.parser(V5);
      parser.on('packet', (p: Packet) => {
        if (p.cmd === 'connect') {
          sock.write(mqttPacket.generate({ cmd: 'connack', sessionPresent: n > 1, reasonCode: 0 }, V5));
        }
        if (p.cmd === 'subscribe') {
          sock.write(mqttPacket.generate({ cmd: 'suback', messageId: p.messageId!, granted: [1, 0x87] }, V5));
          if (n === 2) {
            const properties = { reasonString: 'maintenance' };
            sock.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0x8b, properties }, V5));
          }
        }
      });
      sock.on('data', (d) => parser.parse(d));
    });
    const client = new MqttIngestClient(
      {
        url: `mqtt://127.0.0.1:${port}`,
        clientId: 'c7',
        subscriptions: [
          { filter: 'ok/#', qos: 1 },
          { filter: 'secret/#', qos: 1 },
        ],
        keepaliveSeconds: 1,
        reconnect: { minMs: 50, maxMs: 100 },
      },
      () => {},
    );
    cleanups.push(() => client.stop());
    const errors: Error[] = [];
    client.on('error', (err) => errors.push(err));
    const offline: Error[] = [];
    client.on('offline', (err) => offline.push(err));
    await client.start();
    await waitFor('SUBACK error', () => errors.length > 0);
    expect(errors[0]!.message).toBe('subscription to "secret/#" refused: SUBACK 0x87 Not authorized');
    await waitFor('two connections to end', () => offline.length >= 2);
    expect(offline[0]!.message).toBe('no PINGRESP within 1 s: connection dead');
    expect(offline[1]!.message).toBe('broker sent DISCONNECT 0x8b Server shutting down (maintenance)');
    await waitFor('third connection', () => client.stats.reconnects >= 2);
  });
});

describe('a long drain with the largest window', () => {
  it(`drains 100,000 queued messages completely, \
acking after a simulated commit (packet ids never wrap in flight)`, async () => {
    const broker = await startMosquitto();
    const clientId = 'long-drain';
    const sub = { filter: 'ld/#', qos: 1 as const };
    // Create the persistent session, then go away while the messages are queued.
    const first = new MqttIngestClient({ url: broker.url, clientId, subscriptions: [sub] }, () => {});
    const ready = new Promise((r) => first.once('subscribed', r));
    await first.start();
    await ready;
    await first.stop();
    const pub = await mqtt.connectAsync(broker.url, { clientId: 'ld-pub' });
    const N = 100_000;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      pending.push(pub.publishAsync(`ld/${i % 100}`, String(i), { qos: 1 }));
      if (pending.length >= 2000) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await pub.endAsync();
    const seen = new Set<string>();
    const client = new MqttIngestClient(
      { url: broker.url, clientId, subscriptions: [sub], receiveMaximum: MAX_RECEIVE_WINDOW },
      (msgs) => {
        for (const m of msgs) seen.add(m.payload.toString());
        setTimeout(() => client.ack(msgs), 2);
      },
    );
    await client.start();
    for (let i = 0; i < 600 && (seen.size < N || client.stats.inFlight > 0); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(seen.size).toBe(N);
    expect(client.stats.inFlight).toBe(0);
    await client.stop();
    await broker.stop();
  }, 120_000);
});
