import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IPublishPacket, ISubackPacket, Packet, Parser } from 'mqtt-packet';
import {
  DISCONNECT_NORMAL,
  PINGREQ,
  encodePubacks,
  openSocket,
  parseBrokerUrl,
  reasonText,
  type BrokerAddress,
} from './wire.ts';

export interface IngestClientOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  /** Must be stable: the broker keys the persistent session (and its unacked messages) on it. */
  clientId: string;
  username?: string;
  password?: string;
  /** Filters may be shared: `$share/<group>/<filter>`. QoS 2 is not supported. */
  subscriptions: { filter: string; qos: 0 | 1 }[];
  /** Default 7 days. Clean Start=0 alone is not enough in MQTT 5: expiry 0 ends the session at disconnect. */
  sessionExpirySeconds?: number;
  /** Default 65535: how many unacked QoS 1 messages the broker may have in flight to us. */
  receiveMaximum?: number;
  /** Default 30; 0 turns keepalive off. */
  keepaliveSeconds?: number;
  /** Default 10000: TCP/TLS connect + CONNACK, and also the wait for SUBACK and for PUBACKs of our publishes. */
  connectTimeoutMs?: number;
  /** Default 500..30000: exponential backoff with jitter between reconnect attempts. */
  reconnect?: { minMs: number; maxMs: number };
  /** Extra options for mqtts:// (CA, client certificate, ...). */
  tls?: ConnectionOptions;
}

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  messageId?: number;
  dup: boolean;
}

export interface IngestClientStats {
  received: number;
  acked: number;
  /** Successful reconnections (CONNACKs after the first). */
  reconnects: number;
  /** QoS 1 messages of the current connection not yet PUBACKed. */
  inFlight: number;
}

// The connection a message came on (its "generation") and whether the pipeline has acked it, kept off the
// public shape.
const CONN = Symbol('connection');
const ACKED = Symbol('acked');
interface Tracked extends InboundMessage {
  [CONN]: Connection;
  [ACKED]: boolean;
}

interface Connection {
  socket: Socket;
  parser: Parser;
  connected: boolean; // CONNACK with success seen
  dead: boolean; // being torn down: nothing more is written to it
  error?: Error; // why it ended
  /** QoS 1 messages in arrival order; [head, length) are not PUBACKed yet. */
  unacked: Tracked[];
  head: number;
  batch: Tracked[] | undefined; // messages parsed from the chunk being handled
  paused: boolean; // socket reading paused: receiveMaximum messages unacked
  serverReceiveMaximum: number;
  lastRxAt: number;
  pingSentAt: number;
  subscribeId: number;
  timers: NodeJS.Timeout[];
  closed: Promise<void>;
  markClosed: () => void;
}

interface PendingPublish {
  conn: Connection;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULTS = {
  sessionExpirySeconds: 7 * 24 * 3600,
  receiveMaximum: 65535,
  keepaliveSeconds: 30,
  connectTimeoutMs: 10_000,
  reconnect: { minMs: 500, maxMs: 30_000 },
};
const STOP_TIMEOUT_MS = 2000;

/**
 * MQTT 5 client for zero-loss QoS 1 ingestion: takes in every PUBLISH without waiting, hands them to
 * `onMessages` one socket chunk at a time, and sends PUBACKs only when `ack` is called (after the commit), in
 * arrival order.
 *
 * Backpressure: there is no receive buffer of our own. `receiveMaximum` tells the broker to stop sending once
 * that many QoS 1 messages are unacked, so a slow pipeline holds at most that many. Mosquitto 2.0.11 does not
 * keep to it once PUBACKs flow (measured: thousands over a limit of 100), so we also stop reading the socket
 * at that many unacked and let TCP hold the broker back; acks resume reading. A pipeline must therefore
 * commit on a timer too, not only when its batch is full. QoS 0 messages count toward neither.
 *
 * Events: 'connect' ({ sessionPresent }), 'subscribed' ({ granted: SUBACK codes }, after each CONNACK),
 * 'offline' (Error: a connection or reconnect attempt ended), 'error' (Error: refused subscription, ...). 'error' is only emitted to listeners:
 * a background client must not crash the process because nobody listens.
 */
export class MqttIngestClient extends EventEmitter {
  private readonly opts: Required<Omit<IngestClientOptions, 'username' | 'password' | 'tls'>> &
    Pick<IngestClientOptions, 'username' | 'password' | 'tls'>;
  private readonly addr: BrokerAddress;
  private conn: Connection | undefined;
  private started = false;
  private stopped = false;
  private firstConnect: { resolve: (v: { sessionPresent: boolean }) => void; reject: (e: Error) => void } | undefined;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, PendingPublish>();
  private lastPacketId = 0;
  private counts = { received: 0, acked: 0, reconnects: 0 };

  constructor(
    opts: IngestClientOptions,
    private readonly onMessages: (msgs: InboundMessage[]) => void,
  ) {
    super();
    this.opts = { ...DEFAULTS, ...opts };
    this.addr = parseBrokerUrl(opts.url);
    validate(this.opts);
  }

  get stats(): IngestClientStats {
    const c = this.conn;
    return { ...this.counts, inFlight: c && !c.dead ? c.unacked.length - c.head : 0 };
  }

  /** Resolves on the first CONNACK; rejects if that connection fails. Afterwards reconnects by itself. */
  start(): Promise<{ sessionPresent: boolean }> {
    if (this.started) return Promise.reject(new Error('MqttIngestClient.start() called twice'));
    this.started = true;
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.connect();
    });
  }

  /**
   * PUBACK the QoS 1 messages among `msgs`. PUBACKs go out in arrival order (MQTT 5 §4.6): a message acked
   * before an earlier one waits for it. Messages from an older connection are skipped: the broker resends
   * them on the current one.
   */
  ack(msgs: readonly InboundMessage[]): void {
    const conn = this.conn;
    if (!conn || conn.dead) return;
    let any = false;
    for (const m of msgs as readonly Tracked[]) {
      if (m[CONN] === conn && m.qos === 1) {
        m[ACKED] = true;
        any = true;
      }
    }
    if (any) this.flushAcks(conn);
  }

  /**
   * Drop the connection without DISCONNECT (as a crash would) and reconnect: the broker then resends every
   * unacked QoS 1 message. For a pipeline whose commit failed: without this, those messages (and all after
   * them, held back to keep PUBACK order) stay in flight until the connection ends for another reason.
   */
  reconnect(reason = 'reconnect requested'): void {
    if (this.conn && !this.conn.dead) this.drop(this.conn, new Error(reason));
  }

  publish(topic: string, payload: Buffer | string, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    const conn = this.conn;
    if (!conn || !conn.connected || conn.dead) {
      return Promise.reject(new Error(`MQTT client ${this.opts.clientId} is offline: cannot publish to ${topic}`));
    }
    const qos = opts.qos ?? 0;
    const packet = { cmd: 'publish', topic, payload, qos, retain: opts.retain ?? false, dup: false } as const;
    if (qos === 0) {
      conn.socket.write(mqttPacket.generate(packet, { protocolVersion: 5 }));
      return Promise.resolve();
    }
    if (this.pending.size >= conn.serverReceiveMaximum) {
      return Promise.reject(new Error(`publish to ${topic}: ${this.pending.size} publishes already await PUBACK`));
    }
    const messageId = this.nextPacketId(conn);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(messageId);
        reject(new Error(`publish to ${topic}: no PUBACK within ${this.opts.connectTimeoutMs} ms`));
      }, this.opts.connectTimeoutMs);
      this.pending.set(messageId, { conn, resolve, reject, timer });
      conn.socket.write(mqttPacket.generate({ ...packet, messageId }, { protocolVersion: 5 }));
    });
  }

  /** DISCONNECT (reason 0: the session and its unacked messages are kept), close, no more reconnects. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const conn = this.conn;
    if (!conn) return;
    conn.error ??= new Error('MqttIngestClient stopped');
    if (conn.connected && !conn.dead) {
      conn.dead = true;
      conn.socket.end(DISCONNECT_NORMAL);
    } else {
      conn.dead = true;
      conn.socket.destroy();
    }
    const timer = setTimeout(() => conn.socket.destroy(), STOP_TIMEOUT_MS);
    await conn.closed;
    clearTimeout(timer);
  }

  private connect(): void {
    const { clientId, username, password, keepaliveSeconds, connectTimeoutMs } = this.opts;
    let markClosed!: () => void;
    const closed = new Promise<void>((r) => (markClosed = r));
    const socket = openSocket(this.addr, this.opts.tls);
    const conn: Connection = {
      socket,
      parser: mqttPacket.parser({ protocolVersion: 5 }),
      connected: false,
      dead: false,
      unacked: [],
      head: 0,
      batch: undefined,
      paused: false,
      serverReceiveMaximum: 65535,
      lastRxAt: Date.now(),
      pingSentAt: 0,
      subscribeId: 0,
      timers: [],
      closed,
      markClosed,
    };
    this.conn = conn;
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', (err) => (conn.error ??= err));
    socket.on('close', () => this.onClose(conn));
    conn.parser.on('packet', (p: Packet) => this.onPacket(conn, p));
    conn.parser.on('error', (err: Error) => this.drop(conn, new Error(`malformed packet from broker: ${err.message}`)));
    socket.setNoDelay(true);
    conn.timers.push(
      setTimeout(() => {
        if (!conn.connected) this.drop(conn, new Error(`no CONNACK within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs),
    );
    let connect: Buffer;
    try {
      connect = mqttPacket.generate(
        {
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 5,
          clientId,
          clean: false,
          keepalive: keepaliveSeconds,
          username,
          password: password === undefined ? undefined : Buffer.from(password),
          properties: {
            sessionExpiryInterval: this.opts.sessionExpirySeconds,
            receiveMaximum: this.opts.receiveMaximum,
          },
        },
        { protocolVersion: 5 },
      );
    } catch (err) {
      return this.drop(conn, new Error(`cannot encode CONNECT: ${(err as Error).message}`));
    }
    socket.write(connect); // net/tls queue it until the socket is connected
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.dead) return;
    conn.lastRxAt = Date.now();
    conn.parser.parse(chunk); // emits 'packet' synchronously, filling conn.batch
    const batch = conn.batch;
    if (!batch) return;
    conn.batch = undefined;
    try {
      this.onMessages(batch);
    } catch (err) {
      // The batch may be half taken: let the broker resend it rather than guess.
      this.emitError(new Error(`onMessages threw: ${(err as Error).message}`, { cause: err }));
      return this.drop(conn, new Error('onMessages threw; reconnecting for redelivery'));
    }
    if (!conn.paused && !conn.dead && conn.unacked.length - conn.head >= this.opts.receiveMaximum) {
      conn.paused = true;
      conn.socket.pause();
    }
  }

  private onPacket(conn: Connection, p: Packet): void {
    switch (p.cmd) {
      case 'publish':
        return this.onPublish(conn, p);
      case 'connack':
        return this.onConnack(conn, p);
      case 'suback':
        return this.onSuback(conn, p);
      case 'puback': {
        const pending = this.pending.get(p.messageId!);
        if (!pending || pending.conn !== conn) return;
        this.pending.delete(p.messageId!);
        clearTimeout(pending.timer);
        const code = p.reasonCode ?? 0;
        if (code < 0x80) pending.resolve();
        else pending.reject(new Error(`publish refused: PUBACK ${reasonText(code, p.properties?.reasonString)}`));
        return;
      }
      case 'pingresp':
        conn.pingSentAt = 0;
        return;
      case 'disconnect':
        return this.drop(
          conn,
          new Error(`broker sent DISCONNECT ${reasonText(p.reasonCode ?? 0, p.properties?.reasonString)}`),
        );
      default:
        return this.drop(conn, new Error(`unexpected ${p.cmd} packet from broker`));
    }
  }

  private onPublish(conn: Connection, p: IPublishPacket): void {
    if (p.qos === 2) return this.drop(conn, new Error(`QoS 2 PUBLISH on ${p.topic}: not supported`));
    const msg: Tracked = {
      topic: p.topic,
      payload: p.payload as Buffer,
      qos: p.qos,
      messageId: p.messageId,
      dup: p.dup,
      [CONN]: conn,
      [ACKED]: false,
    };
    this.counts.received++;
    if (msg.qos === 1) conn.unacked.push(msg);
    (conn.batch ??= []).push(msg);
  }

  private onConnack(conn: Connection, p: IConnackPacket): void {
    const code = p.reasonCode ?? p.returnCode ?? 0;
    if (code !== 0) {
      return this.drop(conn, new Error(`broker refused the connection: CONNACK ${reasonText(code, p.properties?.reasonString)}`));
    }
    conn.connected = true;
    conn.serverReceiveMaximum = p.properties?.receiveMaximum ?? 65535;
    if (p.properties?.sessionExpiryInterval === 0) {
      this.emitError(new Error('broker set session expiry to 0: unacked messages are lost if the connection drops'));
    }
    this.startKeepalive(conn, p.properties?.serverKeepAlive ?? this.opts.keepaliveSeconds);
    this.subscribe(conn);
    if (this.firstConnect) {
      this.firstConnect.resolve({ sessionPresent: p.sessionPresent });
      this.firstConnect = undefined;
    } else {
      this.counts.reconnects++;
    }
    this.attempt = 0;
    this.emit('connect', { sessionPresent: p.sessionPresent });
  }

  // Always subscribe, session present or not: simple, and it repairs a session the broker lost.
  private subscribe(conn: Connection): void {
    conn.subscribeId = this.nextPacketId(conn);
    const subscriptions = this.opts.subscriptions.map((s) => ({ topic: s.filter, qos: s.qos }));
    conn.socket.write(
      mqttPacket.generate({ cmd: 'subscribe', messageId: conn.subscribeId, subscriptions }, { protocolVersion: 5 }),
    );
    // A broker busy sending us a backlog answers late; only give up when it has gone quiet.
    const ms = this.opts.connectTimeoutMs;
    const check = () => {
      if (conn.subscribeId === 0 || conn.dead) return;
      if (conn.paused || Date.now() - conn.lastRxAt < ms) conn.timers.push(setTimeout(check, ms));
      else this.drop(conn, new Error(`no SUBACK within ${ms} ms`));
    };
    conn.timers.push(setTimeout(check, ms));
  }

  private onSuback(conn: Connection, p: ISubackPacket): void {
    if (p.messageId !== conn.subscribeId) return;
    conn.subscribeId = 0;
    p.granted.forEach((code, i) => {
      const sub = this.opts.subscriptions[i];
      if (!sub || typeof code !== 'number') return;
      if (code >= 0x80) {
        this.emitError(new Error(`subscription to "${sub.filter}" refused: SUBACK ${reasonText(code)}`));
      } else if (code < sub.qos) {
        this.emitError(new Error(`subscription to "${sub.filter}" granted QoS ${code}, not ${sub.qos}: no acks`));
      }
    });
    this.emit('subscribed', { granted: p.granted });
  }

  // Any bytes from the broker prove the connection alive: a PINGRESP queued behind a backlog of PUBLISHes
  // must not count as missing.
  private startKeepalive(conn: Connection, seconds: number): void {
    if (seconds <= 0) return;
    const timer = setInterval(() => {
      if (conn.pingSentAt !== 0 && !conn.paused && conn.lastRxAt < conn.pingSentAt) {
        return this.drop(conn, new Error(`no PINGRESP within ${seconds} s: connection dead`));
      }
      conn.pingSentAt = Date.now();
      conn.socket.write(PINGREQ);
    }, seconds * 1000);
    conn.timers.push(timer);
  }

  private flushAcks(conn: Connection): void {
    const q = conn.unacked;
    let end = conn.head;
    while (end < q.length && q[end]![ACKED]) end++;
    if (end === conn.head) return;
    conn.socket.write(encodePubacks(q, conn.head, end));
    this.counts.acked += end - conn.head;
    if (end === q.length) {
      q.length = 0;
      conn.head = 0;
    } else if (end > 4096 && end * 2 > q.length) {
      conn.unacked = q.slice(end); // let acked messages (and their socket chunks) be collected
      conn.head = 0;
    } else {
      conn.head = end;
    }
    if (conn.paused && conn.unacked.length - conn.head < this.opts.receiveMaximum) {
      conn.paused = false;
      conn.pingSentAt = 0; // a PINGRESP we could not read while paused is not a missing one
      conn.socket.resume(); // data events start on a later tick, not inside ack()
    }
  }

  private drop(conn: Connection, err: Error): void {
    if (conn.dead) return;
    conn.dead = true;
    conn.error ??= err;
    conn.socket.destroy();
  }

  private onClose(conn: Connection): void {
    conn.dead = true;
    for (const t of conn.timers) clearTimeout(t);
    conn.markClosed();
    const err = conn.error ?? new Error('connection closed by the broker');
    for (const [id, p] of this.pending) {
      if (p.conn !== conn) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error(`connection lost before PUBACK: ${err.message}`));
    }
    if (this.firstConnect) {
      const { reject } = this.firstConnect;
      this.firstConnect = undefined;
      this.stopped = true;
      return reject(new Error(`MQTT connect to ${this.opts.url} as ${this.opts.clientId} failed: ${err.message}`, { cause: err }));
    }
    if (this.stopped) return;
    this.emit('offline', err);
    const { minMs, maxMs } = this.opts.reconnect;
    const base = Math.min(maxMs, minMs * 2 ** Math.min(this.attempt++, 30));
    const delay = base / 2 + Math.random() * (base / 2); // jitter: spread a fleet's reconnects apart
    this.reconnectTimer = setTimeout(() => {
      if (!this.stopped) this.connect();
    }, delay);
  }

  private nextPacketId(conn: Connection): number {
    do {
      this.lastPacketId = (this.lastPacketId % 65535) + 1;
    } while (this.pending.has(this.lastPacketId) || this.lastPacketId === conn.subscribeId);
    return this.lastPacketId;
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function validate(o: IngestClientOptions & typeof DEFAULTS): void {
  const int = (v: number, min: number, max: number) => Number.isInteger(v) && v >= min && v <= max;
  if (!o.clientId) throw new Error('MqttIngestClient: clientId is required (the persistent session is keyed on it)');
  if (!int(o.sessionExpirySeconds, 1, 0xffffffff)) {
    throw new Error('MqttIngestClient: sessionExpirySeconds must be 1..4294967295 (0 drops the session at disconnect)');
  }
  if (!int(o.receiveMaximum, 1, 65535)) throw new Error('MqttIngestClient: receiveMaximum must be 1..65535');
  if (!int(o.keepaliveSeconds, 0, 65535)) throw new Error('MqttIngestClient: keepaliveSeconds must be 0..65535');
  if (!(o.connectTimeoutMs > 0)) throw new Error('MqttIngestClient: connectTimeoutMs must be > 0');
  if (!(o.reconnect.minMs > 0 && o.reconnect.maxMs >= o.reconnect.minMs)) {
    throw new Error('MqttIngestClient: reconnect needs 0 < minMs <= maxMs');
  }
  if (o.subscriptions.length === 0) throw new Error('MqttIngestClient needs at least one subscription');
  for (const s of o.subscriptions) {
    if (s.qos !== 0 && s.qos !== 1) throw new Error(`subscription "${s.filter}": QoS ${s.qos} not supported (0 or 1)`);
  }
}
