/**
 * A lean QoS 1 load generator for the ingest bench: MQTT 3.1.1 over plain sockets, packets encoded by hand
 * straight into one buffer per write (no per-message objects, no mqtt-packet generator), a bounded number of
 * PUBLISHes awaiting PUBACK per connection. 3.1.1 because Mosquitto 2.0 gives MQTT 5 publishers a receive
 * maximum of `max_inflight_messages` (20): that would throttle the publisher, not the consumer under test.
 *
 * Two modes: `publishAll` (as fast as the broker acks: queuing a backlog) and `publishPaced` (a target rate,
 * for the live measure). Messages are numbered 0.. in the order they are written (`seq`), round-robin over the
 * connections; the caller's `encode` writes the payload for a seq.
 */
import { connect, type Socket } from 'node:net';

/** Wall-clock milliseconds with sub-ms resolution (the same clock as Date.now()). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface MessageFactory {
  /** The topic bytes of message `seq` (pre-encoded: the same few topics over and over). */
  topic(seq: number): Buffer;
  /** The payload (ASCII/latin1 JSON) of message `seq`, published at `sentMs`. */
  payload(seq: number, sentMs: number): string;
}

interface Conn {
  sock: Socket;
  inflight: number;
  nextId: number;
  acked: number;
  /** Unparsed bytes from the broker (PUBACKs are 4 bytes; a chunk may split one). */
  rest: Buffer | undefined;
  onAck?: () => void;
  error?: Error;
}

const CHUNK = 2000; // messages per socket write at most

/** MQTT 3.1.1 CONNECT: clean session, keepalive off (a busy bench must not be dropped for a late PINGREQ). */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const body = Buffer.concat([
    Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00]),
    Buffer.from([id.length >> 8, id.length & 0xff]),
    id,
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

export class Publisher {
  private conns: Conn[] = [];
  private seq = 0;
  private rr = 0;
  private scratch = Buffer.allocUnsafe(CHUNK * 512);

  private constructor(
    private readonly factory: MessageFactory,
    private readonly window: number,
  ) {}

  /** `connections` sockets, each CONNACKed, with at most `window` unacked PUBLISHes each. */
  static async connect(
    host: string,
    port: number,
    connections: number,
    factory: MessageFactory,
    opts: { window?: number; clientIdPrefix?: string } = {},
  ): Promise<Publisher> {
    const p = new Publisher(factory, opts.window ?? 5000);
    const prefix = opts.clientIdPrefix ?? `bench-pub-${process.pid}`;
    p.conns = await Promise.all(Array.from({ length: connections }, (_, i) => p.open(host, port, `${prefix}-${i}`)));
    return p;
  }

  /** How many messages were written so far (= the next seq). */
  get sent(): number {
    return this.seq;
  }
  get acked(): number {
    return this.conns.reduce((a, c) => a + c.acked, 0);
  }
  get inflight(): number {
    return this.conns.reduce((a, c) => a + c.inflight, 0);
  }

  private open(host: string, port: number, clientId: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      sock.setNoDelay(true);
      const c: Conn = { sock, inflight: 0, nextId: 1, acked: 0, rest: undefined };
      let connacked = false;
      sock.once('connect', () => sock.write(connectPacket(clientId)));
      sock.on('error', (e) => {
        c.error ??= e;
        if (!connacked) reject(e);
      });
      sock.on('close', () => {
        c.error ??= new Error(`publisher ${clientId}: connection closed by the broker`);
        c.onAck?.();
      });
      sock.on('data', (chunk: Buffer) => {
        const buf = c.rest ? Buffer.concat([c.rest, chunk]) : chunk;
        let o = 0;
        let acks = 0;
        while (buf.length - o >= 2) {
          const type = buf[o]! >> 4;
          const len = buf[o + 1]!; // every packet a broker sends a QoS 1 publisher is short (< 128 bytes)
          if (buf.length - o < 2 + len) break;
          if (type === 4) acks++;
          else if (type === 2) {
            if (buf[o + 3] !== 0) return reject(new Error(`publisher ${clientId}: CONNACK refused (${buf[o + 3]})`));
            connacked = true;
            resolve(c);
          }
          o += 2 + len;
        }
        c.rest = o < buf.length ? Buffer.from(buf.subarray(o)) : undefined;
        if (acks) {
          c.inflight -= acks;
          c.acked += acks;
          c.onAck?.();
        }
      });
    });
  }

  /** Encodes and writes `count` messages (seq, seq+1, ...) on `c` in one write. */
  private writeBatch(c: Conn, count: number): void {
    const sentMs = nowMs();
    let buf = this.scratch;
    let o = 0;
    for (let i = 0; i < count; i++) {
      const seq = this.seq++;
      const topic = this.factory.topic(seq);
      const payload = this.factory.payload(seq, sentMs);
      const remaining = 2 + topic.length + 2 + payload.length; // ASCII payloads: length in bytes = in chars
      if (o + remaining + 5 > buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, o);
        buf = this.scratch = bigger;
      }
      buf[o++] = 0x32; // PUBLISH, QoS 1
      let r = remaining;
      do {
        let b = r & 0x7f;
        r >>>= 7;
        if (r) b |= 0x80;
        buf[o++] = b;
      } while (r);
      buf[o++] = topic.length >> 8;
      buf[o++] = topic.length & 0xff;
      o += topic.copy(buf, o);
      const id = c.nextId;
      c.nextId = id === 65535 ? 1 : id + 1;
      buf[o++] = id >> 8;
      buf[o++] = id & 0xff;
      o += buf.write(payload, o, 'latin1');
    }
    c.inflight += count;
    c.sock.write(Buffer.from(buf.subarray(0, o))); // a copy: the scratch buffer is reused at once
  }

  private check(): void {
    const bad = this.conns.find((c) => c.error);
    if (bad) throw bad.error!;
  }

  /** Publishes messages seq .. seq+n-1 as fast as PUBACKs come back; resolves when all are acked. */
  async publishAll(n: number): Promise<void> {
    const end = this.seq + n;
    await new Promise<void>((resolve, reject) => {
      const pump = () => {
        try {
          this.check();
        } catch (e) {
          return reject(e);
        }
        for (const c of this.conns) {
          while (this.seq < end && c.inflight < this.window && c.sock.writableLength < 1 << 20) {
            this.writeBatch(c, Math.min(CHUNK, this.window - c.inflight, end - this.seq));
          }
        }
        if (this.seq >= end && this.inflight === 0) resolve();
      };
      for (const c of this.conns) {
        c.onAck = pump;
        c.sock.on('drain', pump);
      }
      pump();
    });
    for (const c of this.conns) {
      c.onAck = undefined;
      c.sock.removeAllListeners('drain');
    }
  }

  /**
   * Publishes at `rate` msgs/s for `seconds` (on a 2 ms tick, catching up if a tick comes late). When every
   * connection's window is full the publisher falls behind schedule: `maxBehindMs` says by how much at worst.
   * `onTick` runs after every tick (for the caller's bookkeeping of what was sent when). `ahead`, when given,
   * caps how many messages may be out beyond what the consumer has done (`ahead.done()`): a capacity
   * measure, where the rate is only an upper bound and the consumer sets the pace.
   */
  async publishPaced(
    rate: number,
    seconds: number,
    onTick?: (sent: number, at: number) => void,
    ahead?: { max: number; done: () => number },
  ): Promise<{ seconds: number; sent: number; maxBehindMs: number }> {
    const start = nowMs();
    const seq0 = this.seq;
    const total = Math.round(rate * seconds);
    let maxBehind = 0;
    for (;;) {
      this.check();
      const now = nowMs();
      let due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
      if (ahead) due = Math.min(due, ahead.done() + ahead.max);
      let todo = due - (this.seq - seq0);
      // Round-robin over connections with room, a few hundred messages at a time, so they stay balanced.
      let stuck = 0;
      while (todo > 0 && stuck < this.conns.length) {
        const c = this.conns[this.rr++ % this.conns.length]!;
        const room = Math.min(this.window - c.inflight, 500, todo);
        if (room <= 0 || c.sock.writableLength > 1 << 20) {
          stuck++;
          continue;
        }
        stuck = 0;
        this.writeBatch(c, room);
        todo -= room;
      }
      maxBehind = Math.max(maxBehind, (todo / rate) * 1000);
      onTick?.(this.seq, now);
      if (this.seq - seq0 >= total || (ahead && now - start >= seconds * 1000)) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const elapsed = (nowMs() - start) / 1000;
    // Let the last PUBACKs arrive (they say the broker has every message).
    const until = Date.now() + 30_000;
    while (this.inflight > 0 && Date.now() < until) {
      this.check();
      await new Promise((r) => setTimeout(r, 5));
    }
    if (this.inflight > 0)
      throw new Error(`publisher: ${this.inflight} messages still without PUBACK 30 s after the last was sent`);
    return { seconds: elapsed, sent: this.seq - seq0, maxBehindMs: maxBehind };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.sock.destroyed) return resolve();
            c.sock.once('close', () => resolve());
            c.sock.end(Buffer.from([0xe0, 0x00])); // DISCONNECT
            setTimeout(() => c.sock.destroy(), 2000).unref();
          }),
      ),
    );
  }
}
