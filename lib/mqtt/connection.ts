import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IPubackPacket, IPublishPacket, ISubackPacket, Packet, Parser } from 'mqtt-packet';
import { PacketFramer, type FramedPublish } from './framer.ts';
import { DISCONNECT_NORMAL, PINGREQ, encodePubacks, openSocket, reasonText, type BrokerAddress } from './wire.ts';

const STOP_TIMEOUT_MS = 2000;

/** A PUBLISH as handed to the client's owner, one socket chunk at a time. */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  messageId?: number;
  dup: boolean;
}

// The connection a message came on (its "generation") and whether the pipeline has acked it, kept off the
// public shape.
const CONN = Symbol('connection');
const ACKED = Symbol('acked');
interface Tracked extends InboundMessage {
  [CONN]: IngestConnection;
  [ACKED]: boolean;
}

export interface ConnectionSettings {
  addr: BrokerAddress;
  /** 5 normally; 4 (MQTT 3.1.1) for brokers that refuse 5, such as the embedded aedes. */
  protocolVersion: 4 | 5;
  tls?: ConnectionOptions;
  receiveMaximum: number;
  connectTimeoutMs: number;
}

/** What the client hears from one connection. Packets the connection handles itself are not passed on. */
export interface ConnectionHooks {
  onMessages(msgs: InboundMessage[]): void;
  onConnack(p: IConnackPacket): void; // success only: a refusal ends the connection
  onSuback(p: ISubackPacket): void;
  onPuback(p: IPubackPacket): void;
  onClose(err: Error): void;
}

/**
 * One network connection to the broker, i.e. one generation of delivered messages: the broker's packet ids
 * and its in-flight window belong to it, so its messages can only be acked on it.
 */
export class IngestConnection {
  readonly socket: Socket;
  connected = false; // CONNACK with success seen
  /** The CONNACK code when the broker refused the connection. */
  refusedCode: number | undefined;
  dead = false; // being torn down: nothing more is written
  serverReceiveMaximum = 65535;
  readonly closed: Promise<void>;
  private error: Error | undefined; // first reason it ended
  private readonly parser: Parser;
  private readonly framer: PacketFramer;
  /** QoS 1 messages in arrival order; [head, length) are not PUBACKed yet. */
  private unacked: Tracked[] = [];
  private head = 0;
  /** The same messages by packet id (unique while unacked), so a copy of a message acks the original. */
  private readonly unackedById = new Map<number, Tracked>();
  private batch: Tracked[] | undefined; // messages parsed from the chunk being handled
  private paused = false; // reading stopped: receiveMaximum messages unacked
  private lastRxAt = Date.now();
  private pingSentAt = 0;
  private subscribeId = 0;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly hooks: ConnectionHooks,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion: settings.protocolVersion });
    // Whole packets only reach the parser: PUBLISH is decoded by the framer, the rest by mqtt-packet.
    this.framer = new PacketFramer(
      settings.protocolVersion === 5,
      (p) => this.onPublish(p),
      (packet) => this.parser.parse(packet),
    );
    let markClosed!: () => void;
    this.closed = new Promise<void>((r) => (markClosed = r));
    this.socket = openSocket(settings.addr, settings.tls);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => (this.error ??= err));
    this.socket.on('close', () => {
      this.dead = true;
      for (const t of this.timers) clearTimeout(t);
      markClosed();
      this.hooks.onClose(this.error ?? new Error('connection closed by the broker'));
    });
    this.parser.on('packet', (p: Packet) => this.onPacket(p));
    this.parser.on('error', (err: Error) => this.drop(new Error(`malformed packet from broker: ${err.message}`)));
    const ms = settings.connectTimeoutMs;
    this.after(ms, () => !this.connected && this.drop(new Error(`no CONNACK within ${ms} ms`)));
  }

  get inFlight(): number {
    return this.dead ? 0 : this.unacked.length - this.head;
  }

  /** Writes a packet; net/tls queue it until the socket is connected. Throws if it cannot be encoded. */
  send(packet: Packet): void {
    if (!this.dead) this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.settings.protocolVersion }));
  }

  /** Marks this connection's QoS 1 messages among `msgs` acked; returns how many PUBACKs went out. */
  ack(msgs: readonly InboundMessage[]): number {
    if (this.dead) return 0;
    for (const m of msgs as readonly Tracked[]) {
      if (m[CONN] !== this || m.qos !== 1) continue;
      const original = this.unackedById.get(m.messageId!);
      if (original) original[ACKED] = true;
    }
    // PUBACKs in arrival order (MQTT 5 §4.6): one acked before an earlier one waits for it.
    const q = this.unacked;
    const start = this.head;
    let end = start;
    while (end < q.length && q[end]![ACKED]) end++;
    if (end === start) return 0;
    this.socket.write(encodePubacks(q, start, end));
    for (let i = start; i < end; i++) this.unackedById.delete(q[i]!.messageId!);
    if (end === q.length) {
      q.length = 0;
      this.head = 0;
    } else if (end > 4096 && end * 2 > q.length) {
      this.unacked = q.slice(end); // let acked messages (and the socket chunks they point into) be collected
      this.head = 0;
    } else {
      this.head = end;
    }
    if (this.paused && this.inFlight < this.settings.receiveMaximum) {
      this.paused = false;
      this.pingSentAt = 0; // a PINGRESP we could not read while paused is not a missing one
      this.socket.resume(); // data events start on a later tick, not inside ack()
    }
    return end - start;
  }

  /** SUBSCRIBE, then wait for its SUBACK; a broker busy sending us a backlog answers late, so only give up
   * when it has gone quiet. */
  subscribe(messageId: number, subscriptions: { topic: string; qos: 0 | 1 }[]): void {
    this.subscribeId = messageId;
    this.send({ cmd: 'subscribe', messageId, subscriptions });
    const ms = this.settings.connectTimeoutMs;
    const check = () => {
      if (this.subscribeId === 0 || this.dead) return;
      if (this.paused || Date.now() - this.lastRxAt < ms) this.after(ms, check);
      else this.drop(new Error(`no SUBACK within ${ms} ms`));
    };
    this.after(ms, check);
  }

  /** Fire and forget: UNSUBACK says only whether the filter was there, which nothing here depends on. */
  unsubscribe(messageId: number, topics: string[]): void {
    this.send({ cmd: 'unsubscribe', messageId, unsubscriptions: topics });
  }

  isPendingSubscribe(messageId: number): boolean {
    return messageId === this.subscribeId;
  }

  /** Any bytes from the broker prove the connection alive: a PINGRESP queued behind a backlog of PUBLISHes
   * must not count as missing. */
  startKeepalive(seconds: number): void {
    if (seconds <= 0) return;
    const timer = setInterval(() => {
      if (this.pingSentAt !== 0 && !this.paused && this.lastRxAt < this.pingSentAt) {
        return this.drop(new Error(`no PINGRESP within ${seconds} s: connection dead`));
      }
      this.pingSentAt = Date.now();
      if (!this.dead) this.socket.write(PINGREQ);
    }, seconds * 1000);
    this.timers.push(timer);
  }

  /** Ends without DISCONNECT, as a crash would: the broker keeps the session and resends what is unacked. */
  drop(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.error ??= err;
    this.socket.destroy();
  }

  /** DISCONNECT with reason 0 (session kept) if connected, then wait for the socket to close. */
  async end(reason: Error): Promise<void> {
    this.error ??= reason;
    if (this.connected && !this.dead) {
      this.dead = true;
      this.socket.end(DISCONNECT_NORMAL);
    } else {
      this.drop(reason);
    }
    const timer = setTimeout(() => this.socket.destroy(), STOP_TIMEOUT_MS);
    await this.closed;
    clearTimeout(timer);
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    this.lastRxAt = Date.now();
    try {
      this.framer.push(chunk); // decodes (or has mqtt-packet decode) synchronously, filling this.batch
    } catch (err) {
      this.drop(new Error(`malformed packet from broker: ${(err as Error).message}`));
      return;
    }
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    this.hooks.onMessages(batch);
    // See MqttIngestClient on backpressure: stop reading rather than trust the broker's window.
    if (!this.paused && !this.dead && this.inFlight >= this.settings.receiveMaximum) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private onPacket(p: Packet): void {
    switch (p.cmd) {
      case 'publish':
        this.onPublish(p);
        return;
      case 'connack': {
        const code = p.reasonCode ?? p.returnCode ?? 0;
        if (code !== 0) {
          this.refusedCode = code;
          const reason = reasonText(code, p.properties?.reasonString);
          this.drop(new Error(`broker refused the connection: CONNACK ${reason}`));
          return;
        }
        this.connected = true;
        this.serverReceiveMaximum = p.properties?.receiveMaximum ?? 65535;
        this.hooks.onConnack(p);
        return;
      }
      case 'suback':
        if (p.messageId !== this.subscribeId) return;
        this.subscribeId = 0;
        this.hooks.onSuback(p);
        return;
      case 'puback':
        this.hooks.onPuback(p);
        return;
      case 'unsuback':
        return;
      case 'pingresp':
        this.pingSentAt = 0;
        return;
      case 'disconnect': {
        const reason = reasonText(p.reasonCode ?? 0, p.properties?.reasonString);
        this.drop(new Error(`broker sent DISCONNECT ${reason}`));
        return;
      }
      default:
        this.drop(new Error(`unexpected ${p.cmd} packet from broker`));
        return;
    }
  }

  private onPublish(p: IPublishPacket | FramedPublish): void {
    if (p.qos === 2) {
      this.drop(new Error(`QoS 2 PUBLISH on ${p.topic}: not supported`));
      return;
    }
    const msg: Tracked = {
      topic: p.topic,
      payload: p.payload as Buffer,
      qos: p.qos,
      messageId: p.messageId,
      dup: p.dup,
      [CONN]: this,
      [ACKED]: false,
    };
    if (msg.qos === 1) {
      this.unacked.push(msg);
      this.unackedById.set(msg.messageId!, msg);
    }
    let batch = this.batch;
    if (!batch) {
      batch = [];
      this.batch = batch;
    }
    batch.push(msg);
  }

  private after(ms: number, fn: () => void): void {
    this.timers.push(setTimeout(fn, ms));
  }
}
