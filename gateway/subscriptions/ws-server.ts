import type { IncomingMessage, Server } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';
import { Counter, Gauge, type Registry } from 'prom-client';
import WebSocket, { WebSocketServer } from 'ws';
import { formatError } from '../../lib/errors.ts';
import { log } from '../../lib/log.ts';
import type { GatewayContext } from '../context.ts';
import type { Member, SubscriptionEngine } from './engine.ts';

/** graphql-transport-ws, the protocol of the graphql-ws library (github.com/enisdenjo/graphql-ws PROTOCOL.md). */
const PROTOCOL = 'graphql-transport-ws';
const CLOSE = {
  badRequest: [4400, 'Invalid message received'],
  unauthorized: [4401, 'Unauthorized'],
  forbidden: [4403, 'Forbidden'],
  subprotocol: [4406, 'Subprotocol not acceptable'],
  initTimeout: [4408, 'Connection initialisation timeout'],
  duplicateId: [4409, 'Subscriber for this id already exists'],
  tooManyInits: [4429, 'Too many initialisation requests'],
  goingAway: [1001, 'Going away'],
  expired: [4403, 'Forbidden: the token expired'],
} as const;

/** Operations one connection may have open at once: a dashboard needs a handful; this bounds abuse. */
const MAX_OPERATIONS = 200;
/** A connection must send connection_init within this (ms), as graphql-ws's own server requires. */
const INIT_TIMEOUT_MS = 3000;
/** Longest timer Node accepts (~24.8 days); a later expiry is checked again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A `subscribe` message's payload (graphql-transport-ws). */
interface SubscribePayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

export interface WsServerOptions {
  server: Server;
  path: string;
  engine: SubscriptionEngine;
  /** Queries and mutations sent over the socket run through the same Apollo Server as HTTP ones. */
  apollo: ApolloServer<GatewayContext>;
  /** The gateway's auth: the connection's params are presented as the headers of an HTTP request. */
  authenticate: (req: IncomingMessage) => Promise<GatewayContext>;
  registry: Registry;
  /** A client whose socket holds more than this many bytes unsent gets only the newest event per subscription. */
  highWaterBytes?: number;
  pingIntervalMs?: number;
}

/**
 * The gateway's WebSocket endpoint on the same path as HTTP. Written on `ws` rather than graphql-ws's server
 * because fan-out is the cost that matters at 10,000 dashboards: graphql-ws serialises every result once per
 * socket and queues without bound, while here a group's result is serialised once, each socket gets a string
 * concatenation, and a slow socket is conflated (newest event per subscription) instead of queued. The
 * graphql-ws client is the conformance test (test/e2e/subscriptions.test.ts).
 */
export function serveClientSubscriptions(opts: WsServerOptions): { close: () => Promise<void> } {
  const highWater = opts.highWaterBytes ?? 256 * 1024;
  const wss = new WebSocketServer({
    server: opts.server,
    path: opts.path,
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
    maxPayload: 1024 * 1024,
  });
  const m = {
    clients: new Gauge({
      name: 'hub_subscription_clients',
      help: 'Open WebSocket connections',
      registers: [opts.registry],
    }),
    conflated: new Counter({
      name: 'hub_subscription_client_conflated_total',
      help: 'Events a slow client skipped (it got a newer one)',
      registers: [opts.registry],
    }),
    dropped: new Counter({
      name: 'hub_subscription_clients_dropped_total',
      help: 'Clients dropped for not answering pings',
      registers: [opts.registry],
    }),
  };
  const connections = new Set<Connection>();
  /** Connections with conflated events waiting. */
  const slow = new Set<Connection>();

  wss.on('connection', (socket, req) => {
    if (socket.protocol !== PROTOCOL) return socket.close(...CLOSE.subprotocol);
    const c = new Connection(socket, req, opts, highWater, m, () => slow.add(c));
    connections.add(c);
    m.clients.set(connections.size);
    socket.once('close', () => {
      c.dispose();
      connections.delete(c);
      slow.delete(c);
      m.clients.set(connections.size);
    });
  });
  wss.on('error', (err) => log.warn({ err: err.message }, 'websocket server error'));

  // Dead clients: a socket that did not answer its previous ping is terminated; its subscriptions leave. The
  // pings are spread over the interval (a slice every 100 ms): pinging 10,000 sockets at once stalls the event
  // loop, and every client's, for a few hundred milliseconds.
  const pingEveryMs = opts.pingIntervalMs ?? 12_000;
  let pingRound: Connection[] = [];
  let roundStarted = 0;
  const ping = setInterval(() => {
    if (!pingRound.length) {
      if (Date.now() - roundStarted < pingEveryMs) return;
      roundStarted = Date.now();
      pingRound = [...connections];
    }
    const slice = pingRound.splice(
      0,
      Math.max(1, Math.ceil((pingRound.length * 100) / Math.max(100, pingEveryMs - (Date.now() - roundStarted)))),
    );
    for (const c of slice) {
      if (c.socket.readyState !== WebSocket.OPEN) continue;
      if (!c.alive) {
        m.dropped.inc();
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      c.socket.ping();
    }
  }, 100);
  ping.unref();
  // Sockets holding conflated events are retried here, so a burst never queues more than one event per subscription.
  const drain = setInterval(() => {
    for (const c of slow) if (c.flushConflated()) slow.delete(c);
  }, 20);
  drain.unref();

  return {
    close: async () => {
      clearInterval(ping);
      clearInterval(drain);
      for (const c of connections) c.shutdown();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

class Connection {
  alive = true;
  private context?: GatewayContext;
  private initialised = false;
  private readonly subs = new Map<string, Member>();
  /** Per subscription id, the newest frame a slow socket has not taken yet. */
  private readonly conflated = new Map<string, Buffer>();
  private readonly initTimer: NodeJS.Timeout;
  private expiryTimer?: NodeJS.Timeout;

  constructor(
    readonly socket: WebSocket,
    private readonly req: IncomingMessage,
    private readonly opts: WsServerOptions,
    private readonly highWater: number,
    private readonly m: { conflated: Counter },
    private readonly markSlow: () => void,
  ) {
    this.initTimer = setTimeout(() => this.context || socket.close(...CLOSE.initTimeout), INIT_TIMEOUT_MS);
    socket.on('pong', () => (this.alive = true));
    socket.on(
      'message',
      (data, isBinary) =>
        void this.onMessage(isBinary ? '' : data.toString()).catch((err) => {
          log.error({ err: (err as Error).message }, 'websocket message failed');
        }),
    );
    socket.on('error', () => {});
  }

  private async onMessage(raw: string): Promise<void> {
    this.alive = true;
    let msg: { type?: unknown; id?: unknown; payload?: unknown };
    try {
      msg = JSON.parse(raw);
    } catch {
      msg = {};
    }
    switch (msg.type) {
      case 'connection_init':
        return this.init(msg.payload);
      case 'ping':
        return this.send(
          JSON.stringify(msg.payload === undefined ? { type: 'pong' } : { type: 'pong', payload: msg.payload }),
        );
      case 'pong':
        return;
      case 'subscribe': {
        // Only the query is checked here; operationName and variables are passed on as the client sent them.
        const payload = msg.payload as Partial<SubscribePayload> | null | undefined;
        if (typeof msg.id !== 'string' || !msg.id || typeof payload?.query !== 'string') break;
        if (!this.context) return this.socket.close(...CLOSE.unauthorized);
        if (this.subs.has(msg.id))
          return this.socket.close(CLOSE.duplicateId[0], `Subscriber for ${msg.id} already exists`);
        if (this.subs.size >= MAX_OPERATIONS) {
          return this.sendError(msg.id, [
            { message: `At most ${MAX_OPERATIONS} operations per connection`, extensions: { code: 'BAD_USER_INPUT' } },
          ]);
        }
        return this.subscribe(msg.id, payload as SubscribePayload);
      }
      case 'complete':
        if (typeof msg.id !== 'string') break;
        return this.leave(msg.id);
    }
    this.socket.close(...CLOSE.badRequest);
  }

  /** The connection's params stand in for HTTP headers: `{ authorization: 'Bearer <jwt>' }` (or `{ token }`). */
  private async init(params: unknown): Promise<void> {
    if (this.initialised) return this.socket.close(...CLOSE.tooManyInits);
    this.initialised = true;
    const p = (params && typeof params === 'object' ? params : {}) as Record<string, unknown>;
    const auth =
      p.authorization ??
      p.Authorization ??
      (p.headers as Record<string, unknown> | undefined)?.authorization ??
      (typeof p.token === 'string' ? `Bearer ${p.token}` : undefined);
    const headers = { ...this.req.headers, authorization: typeof auth === 'string' ? auth : '' };
    try {
      this.context = await this.opts.authenticate({ headers } as IncomingMessage);
    } catch {
      return this.socket.close(...CLOSE.forbidden);
    }
    clearTimeout(this.initTimer);
    this.closeAtExpiry(this.context.viewer.expiresAt);
    this.send('{"type":"connection_ack"}');
  }

  /**
   * The token was checked once, at connection_init; a connection must not outlive it. At its `exp` the socket
   * closes with 4403, and the client reconnects with a fresh token (every operation is authorised at the gateway).
   */
  private closeAtExpiry(exp: number | undefined): void {
    if (exp === undefined) return;
    const ms = exp * 1000 - Date.now();
    this.expiryTimer = setTimeout(
      () => (ms > MAX_TIMER_MS ? this.closeAtExpiry(exp) : this.socket.close(...CLOSE.expired)),
      Math.max(0, Math.min(ms, MAX_TIMER_MS)),
    );
    this.expiryTimer.unref();
  }

  private async subscribe(id: string, payload: SubscribePayload): Promise<void> {
    const variables = payload.variables ?? {};
    const operationName = payload.operationName ?? undefined;
    const prepared = this.opts.engine.currentPlanner.prepare(payload.query, operationName);
    if (prepared.kind === 'error')
      return this.sendError(
        id,
        prepared.errors.map((e) => formatError(e.toJSON())),
      );
    if (prepared.kind !== 'subscription') {
      // A query or mutation over the socket: one result, then complete.
      const member = this.member(id);
      this.subs.set(id, member);
      const res = await this.opts.apollo.executeOperation(
        { query: payload.query, variables, operationName },
        { contextValue: this.context! },
      );
      if (!this.subs.has(id)) return;
      const single =
        res.body.kind === 'single'
          ? res.body.singleResult
          : {
              errors: [
                { message: 'Incremental delivery is not supported here', extensions: { code: 'BAD_USER_INPUT' } },
              ],
            };
      member.next(JSON.stringify(single), new Map());
      return member.complete();
    }
    const member = this.member(id);
    this.subs.set(id, member);
    this.opts.engine.join(member, prepared.plan, payload.query, variables, this.context!.viewer);
  }

  private member(id: string): Member {
    const idJson = JSON.stringify(id);
    const head = `{"id":${idJson},"type":"next","payload":`;
    return {
      next: (payload, frames) => {
        let frame = frames.get(id);
        if (!frame) {
          frame = Buffer.from(`${head}${payload}}`);
          frames.set(id, frame);
        }
        this.sendNext(id, frame);
      },
      error: (errors) => {
        this.subs.delete(id);
        this.sendError(id, errors);
      },
      complete: () => {
        this.subs.delete(id);
        this.conflated.delete(id);
        this.send(`{"id":${idJson},"type":"complete"}`);
      },
    };
  }

  private sendNext(id: string, frame: Buffer): void {
    if (this.socket.bufferedAmount > this.highWater || this.conflated.size) {
      if (this.conflated.has(id)) this.m.conflated.inc();
      this.conflated.set(id, frame);
      this.markSlow();
      return;
    }
    this.send(frame);
  }

  /** Sends the waiting newest events once the socket has drained; true when nothing waits any more. */
  flushConflated(): boolean {
    if (!this.conflated.size) return true;
    if (this.socket.bufferedAmount > this.highWater / 2) return false;
    for (const frame of this.conflated.values()) this.send(frame);
    this.conflated.clear();
    return true;
  }

  private sendError(id: string, errors: readonly GraphQLFormattedError[]): void {
    this.send(JSON.stringify({ id, type: 'error', payload: errors }));
  }

  /** Text frames always (graphql-transport-ws is JSON text), whether given a string or its UTF-8 bytes. */
  private send(data: string | Buffer): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data, { binary: false });
  }

  private leave(id: string): void {
    const member = this.subs.get(id);
    if (!member) return;
    this.subs.delete(id);
    this.conflated.delete(id);
    this.opts.engine.leave(member);
  }

  /** Gateway shutdown: every subscription completes cleanly, then the socket closes with 1001. */
  shutdown(): void {
    for (const id of [...this.subs.keys()]) {
      const member = this.subs.get(id)!;
      this.opts.engine.leave(member);
      member.complete();
    }
    this.socket.close(...CLOSE.goingAway);
  }

  dispose(): void {
    clearTimeout(this.initTimer);
    clearTimeout(this.expiryTimer);
    for (const member of this.subs.values()) this.opts.engine.leave(member);
    this.subs.clear();
    this.conflated.clear();
  }
}
