import { EventEmitter } from 'node:events';
import type { ConnectionOptions } from 'node:tls';
import type { IConnackPacket, IPubackPacket, ISubackPacket } from 'mqtt-packet';
import { IngestConnection, type ConnectionSettings, type InboundMessage } from './connection.ts';

export type { InboundMessage };
import { parseBrokerUrl, reasonText } from './wire.ts';

export interface IngestClientOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  /** Must be stable: the broker keys the persistent session (and its unacked messages) on it. */
  clientId: string;
  username?: string;
  password?: string;
  /** Filters may be shared: `$share/<group>/<filter>`. QoS 2 is not supported. */
  subscriptions: { filter: string; qos: 0 | 1 }[];
  /**
   * Filters a resumed session may still hold from an earlier layout of the hub and must lose (once a session of its
   * own took them over): unsubscribed after each CONNACK that finds the session present. Default none.
   */
  unsubscribe?: string[];
  /** Default 7 days. Clean Start=0 alone is not enough in MQTT 5: expiry 0 ends the session at disconnect. */
  sessionExpirySeconds?: number;
  /**
   * No persistent session (Clean Start, expiry 0): for a client that only publishes and reads QoS 0 (the live
   * channel), which has nothing for the broker to keep while it is away. Default false.
   */
  cleanStart?: boolean;
  /** Default 20000, at most MAX_RECEIVE_WINDOW: how many unacked QoS 1 messages the broker may have in flight to us. */
  receiveMaximum?: number;
  /** Default 30; 0 turns keepalive off. */
  keepaliveSeconds?: number;
  /** Default 10000: TCP/TLS connect + CONNACK, and also the wait for SUBACK and for PUBACKs of our publishes. */
  connectTimeoutMs?: number;
  /** Default 500..30000: exponential backoff with jitter between reconnect attempts. */
  reconnect?: { minMs: number; maxMs: number };
  /** 5, or 4 for MQTT 3.1.1; default: 5, falling back to 3.1.1 when the broker refuses 5 (as aedes does). */
  protocolVersion?: 4 | 5;
  /** Extra options for mqtts:// (CA, client certificate, ...). */
  tls?: ConnectionOptions;
}

export interface IngestClientStats {
  received: number;
  acked: number;
  /** QoS 1 messages the broker marked DUP: sent before, on a connection that ended unacknowledged. */
  redelivered: number;
  /** Successful reconnections (CONNACKs after the first). */
  reconnects: number;
  /** QoS 1 messages of the current connection not yet PUBACKed. */
  inFlight: number;
}

interface PendingPublish {
  conn: IngestConnection;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The largest in-flight window we allow. Packet ids are 16 bits: with more than 65,535 messages unacknowledged
 * the broker must reuse an id still in flight, and a PUBACK can no longer say which message it acknowledges.
 * Mosquitto 2.0 does not keep to the window once acks flow (it overshot by up to ~12,000 in our tests), so the
 * window stays far enough below 65,535 that an overshoot cannot wrap the ids. Measured: 65,535 stalled a
 * 1,000,000-message drain on a reused id; 20,000 drains it.
 */
export const MAX_RECEIVE_WINDOW = 30_000;

const DEFAULTS = {
  sessionExpirySeconds: 7 * 24 * 3600,
  receiveMaximum: 20_000,
  keepaliveSeconds: 30,
  connectTimeoutMs: 10_000,
  reconnect: { minMs: 500, maxMs: 30_000 },
};

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
 * 'offline' (Error: a connection or reconnect attempt ended), 'error' (Error: refused subscription, ...).
 * 'error' is only emitted to listeners: a background client must not crash the process because nobody listens.
 */
export class MqttIngestClient extends EventEmitter {
  private readonly opts: Required<
    Omit<IngestClientOptions, 'username' | 'password' | 'tls' | 'protocolVersion' | 'cleanStart' | 'unsubscribe'>
  > &
    Pick<IngestClientOptions, 'username' | 'password' | 'tls' | 'protocolVersion' | 'cleanStart' | 'unsubscribe'>;
  private settings: ConnectionSettings;
  private conn: IngestConnection | undefined;
  private started = false;
  private stopped = false;
  private firstConnect: { resolve: (v: { sessionPresent: boolean }) => void; reject: (e: Error) => void } | undefined;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, PendingPublish>();
  private lastPacketId = 0;
  private counts = { received: 0, acked: 0, redelivered: 0, reconnects: 0 };

  constructor(
    opts: IngestClientOptions,
    private readonly onMessages: (msgs: InboundMessage[]) => void,
  ) {
    super();
    // An option given as undefined (say, from an unset config value) means the default, not "no value".
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    this.opts = { ...DEFAULTS, ...(given as unknown as IngestClientOptions) };
    validate(this.opts);
    const { receiveMaximum, connectTimeoutMs, tls } = this.opts;
    this.settings = {
      addr: parseBrokerUrl(opts.url),
      protocolVersion: opts.protocolVersion === 4 ? 4 : 5,
      tls,
      receiveMaximum,
      connectTimeoutMs,
    };
  }

  get stats(): IngestClientStats {
    return { ...this.counts, inFlight: this.conn?.inFlight ?? 0 };
  }

  /** Resolves on the first CONNACK; rejects if that connection fails. Afterwards reconnects by itself. */
  start(): Promise<{ sessionPresent: boolean }> {
    if (this.started || this.stopped) return Promise.reject(new Error('MqttIngestClient can be started only once'));
    this.started = true;
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.connect();
    });
  }

  /**
   * PUBACK the QoS 1 messages among `msgs` (as given to onMessages, or shallow copies of them), in arrival
   * order: a message acked before an earlier one waits for it. Messages from an older connection are skipped:
   * the broker resends them on the current one.
   */
  ack(msgs: readonly InboundMessage[]): void {
    if (this.conn) this.counts.acked += this.conn.ack(msgs);
  }

  /**
   * Drop the connection without DISCONNECT (as a crash would) and reconnect: the broker then resends every
   * unacked QoS 1 message. For a pipeline whose commit failed: without this, those messages (and all after
   * them, held back to keep PUBACK order) stay in flight until the connection ends for another reason.
   */
  reconnect(reason = 'reconnect requested'): void {
    this.conn?.drop(new Error(reason));
  }

  publish(topic: string, payload: Buffer | string, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    const conn = this.conn;
    if (!conn?.connected || conn.dead) {
      return Promise.reject(new Error(`MQTT client ${this.opts.clientId} is offline: cannot publish to ${topic}`));
    }
    const qos = opts.qos ?? 0;
    const packet = { cmd: 'publish', topic, payload, qos, retain: opts.retain ?? false, dup: false } as const;
    if (qos === 0) {
      try {
        conn.send(packet);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    if (this.pending.size >= conn.serverReceiveMaximum) {
      return Promise.reject(new Error(`publish to ${topic}: ${this.pending.size} publishes already await PUBACK`));
    }
    const messageId = this.nextPacketId();
    return new Promise<void>((resolve, reject) => {
      const ms = this.opts.connectTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(messageId);
        reject(new Error(`publish to ${topic}: no PUBACK within ${ms} ms`));
      }, ms);
      this.pending.set(messageId, { conn, resolve, reject, timer });
      try {
        conn.send({ ...packet, messageId });
      } catch (err) {
        this.settle(messageId, err as Error);
      }
    });
  }

  /** DISCONNECT (reason 0: the session and its unacked messages are kept), close, no more reconnects. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    await this.conn?.end(new Error('MqttIngestClient stopped'));
  }

  private connect(): void {
    const { clientId, username, password, keepaliveSeconds, sessionExpirySeconds, receiveMaximum } = this.opts;
    let conn: IngestConnection;
    try {
      conn = new IngestConnection(this.settings, {
        onMessages: (msgs) => this.deliver(conn, msgs),
        onConnack: (p) => this.onConnack(conn, p),
        onSuback: (p) => this.onSuback(p),
        onPuback: (p) => this.onPuback(p),
        onClose: (err) => this.onClose(conn, err),
      });
    } catch (err) {
      this.connectionEnded(err as Error); // e.g. bad TLS options: net/tls throw synchronously
      return;
    }
    this.conn = conn;
    try {
      conn.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: this.settings.protocolVersion,
        clientId,
        clean: this.opts.cleanStart === true,
        keepalive: keepaliveSeconds,
        username,
        password: password === undefined ? undefined : Buffer.from(password),
        // MQTT 3.1.1 has no properties: clean=false alone keeps the session (its expiry is the broker's).
        properties:
          this.settings.protocolVersion === 5
            ? { sessionExpiryInterval: this.opts.cleanStart ? 0 : sessionExpirySeconds, receiveMaximum }
            : undefined,
      });
    } catch (err) {
      conn.drop(new Error(`cannot encode CONNECT: ${(err as Error).message}`));
    }
  }

  private deliver(conn: IngestConnection, msgs: InboundMessage[]): void {
    this.counts.received += msgs.length;
    for (const m of msgs) if (m.dup) this.counts.redelivered++;
    try {
      this.onMessages(msgs);
    } catch (err) {
      // The batch may be half taken: let the broker resend it rather than guess.
      this.emitError(new Error(`onMessages threw: ${(err as Error).message}`, { cause: err }));
      conn.drop(new Error('onMessages threw; reconnecting for redelivery'));
    }
  }

  private onConnack(conn: IngestConnection, p: IConnackPacket): void {
    if (p.properties?.sessionExpiryInterval === 0 && !this.opts.cleanStart) {
      this.emitError(new Error('broker set session expiry to 0: unacked messages are lost if the connection drops'));
    }
    conn.startKeepalive(p.properties?.serverKeepAlive ?? this.opts.keepaliveSeconds);
    // Always subscribe, session present or not: simple, and it repairs a session the broker lost.
    const subscriptions = this.opts.subscriptions.map((s) => ({ topic: s.filter, qos: s.qos }));
    if (subscriptions.length) conn.subscribe(this.nextPacketId(), subscriptions);
    const stale = (this.opts.unsubscribe ?? []).filter((f) => !subscriptions.some((s) => s.topic === f));
    if (p.sessionPresent && stale.length) conn.unsubscribe(this.nextPacketId(), stale);
    if (this.firstConnect) {
      this.firstConnect.resolve({ sessionPresent: p.sessionPresent });
      this.firstConnect = undefined;
    } else {
      this.counts.reconnects++;
      if (!p.sessionPresent && !this.opts.cleanStart) {
        const id = this.opts.clientId;
        this.emitError(new Error(`broker had no session for ${id} on reconnect: messages queued for it are gone`));
      }
    }
    this.attempt = 0;
    this.emit('connect', { sessionPresent: p.sessionPresent });
  }

  private onSuback(p: ISubackPacket): void {
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

  private onPuback(p: IPubackPacket): void {
    const code = p.reasonCode ?? 0;
    if (code < 0x80) {
      this.settle(p.messageId!);
      return;
    }
    this.settle(p.messageId!, new Error(`publish refused: PUBACK ${reasonText(code, p.properties?.reasonString)}`));
  }

  private settle(messageId: number, err?: Error): void {
    const pending = this.pending.get(messageId);
    if (!pending) return;
    this.pending.delete(messageId);
    clearTimeout(pending.timer);
    if (err) pending.reject(err);
    else pending.resolve();
  }

  private onClose(conn: IngestConnection, err: Error): void {
    for (const [id, p] of this.pending) {
      if (p.conn === conn) this.settle(id, new Error(`connection lost before PUBACK: ${err.message}`));
    }
    // A broker that speaks only MQTT 3.1.1 refuses a v5 CONNECT with 0x01 (3.1.1: unacceptable protocol
    // version) or 0x84 (v5: unsupported protocol version): try again at once with 3.1.1, unless 5 was asked for.
    if (
      this.settings.protocolVersion === 5 &&
      this.opts.protocolVersion === undefined &&
      (conn.refusedCode === 0x01 || conn.refusedCode === 0x84)
    ) {
      this.settings = { ...this.settings, protocolVersion: 4 };
      this.emit('downgraded', { protocolVersion: 4 });
      this.connect();
      return;
    }
    this.connectionEnded(err);
  }

  private connectionEnded(err: Error): void {
    if (this.firstConnect) {
      const { reject } = this.firstConnect;
      this.firstConnect = undefined;
      this.stopped = true;
      const { url, clientId } = this.opts;
      reject(new Error(`MQTT connect to ${url} as ${clientId} failed: ${err.message}`, { cause: err }));
      return;
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

  // One id space for our PUBLISHes and SUBSCRIBEs; the broker numbers its own PUBLISHes separately.
  private nextPacketId(): number {
    do {
      this.lastPacketId = (this.lastPacketId % 65535) + 1;
    } while (this.pending.has(this.lastPacketId) || this.conn?.isPendingSubscribe(this.lastPacketId));
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
  if (!int(o.receiveMaximum, 1, MAX_RECEIVE_WINDOW))
    throw new Error(
      `MqttIngestClient: receiveMaximum must be 1..${MAX_RECEIVE_WINDOW} ` +
        '(packet ids must not wrap while unacknowledged)',
    );
  if (!int(o.keepaliveSeconds, 0, 65535)) throw new Error('MqttIngestClient: keepaliveSeconds must be 0..65535');
  if (!(o.connectTimeoutMs > 0)) throw new Error('MqttIngestClient: connectTimeoutMs must be > 0');
  if (!(o.reconnect.minMs > 0 && o.reconnect.maxMs >= o.reconnect.minMs)) {
    throw new Error('MqttIngestClient: reconnect needs 0 < minMs <= maxMs');
  }
  if (o.subscriptions.length === 0 && !o.cleanStart) {
    throw new Error(
      'MqttIngestClient needs at least one subscription (or cleanStart, for a client that only publishes)',
    );
  }
  for (const s of o.subscriptions) {
    if (s.qos !== 0 && s.qos !== 1) throw new Error(`subscription "${s.filter}": QoS ${s.qos} not supported (0 or 1)`);
  }
}
