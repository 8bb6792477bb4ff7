import { randomUUID } from 'node:crypto';
import type { ServiceMap } from '@apollo/gateway';
import type { ExecutionResult, GraphQLFormattedError } from 'graphql';
import { Counter, Gauge, type Registry } from 'prom-client';
import { createInternalTokenCache, signInternalToken } from '../../lib/auth/tokens.ts';
import { scopeKey, type Viewer } from '../../lib/auth/viewer.ts';
import { formatError } from '../../lib/errors.ts';
import { log } from '../../lib/log.ts';
import type { GatewayContext } from '../context.ts';
import { EventCompleter } from './complete-event.ts';
import type { SubscriptionPlan, SubscriptionPlanner } from './planner.ts';
import { Upstreams } from './upstream.ts';

/** Where a group's results go: one subscription of one client connection. */
export interface Member {
  /**
   * `payload` is the serialised ExecutionResult, shared by every member of the group; `frames` is per event,
   * for members to share encoded frames (clients often use the same subscription id, e.g. "1").
   */
  next(payload: string, frames: Map<string, Buffer>): void;
  error(errors: readonly GraphQLFormattedError[]): void;
  complete(): void;
}

export interface EngineOptions {
  internalSecret: string;
  subgraphUrls: Record<string, string>;
  /** Data sources for the `_entities` calls of `rest` (batched). */
  services: ServiceMap;
  registry: Registry;
  /** Give up on an upstream stream that cannot be re-established for this long (then UPSTREAM_UNAVAILABLE). */
  giveUpAfterMs?: number;
}

/** Events of one group resolving at the same time; beyond this the oldest waiting one is dropped (conflated). */
const MAX_IN_FLIGHT = 256;

/** One event's place in a group's ordered outbox; it can be sent once its payload is there. */
interface Pending {
  payload?: string;
}

/**
 * Identical subscriptions (same document, operation, variables and auth scope) form ONE group: one upstream
 * subscription, one entity resolution per event, one JSON.stringify, fanned out to every member. Groups are
 * per gateway process; nothing is shared between gateways, so replicas scale out without coordination.
 */
class Group {
  readonly members = new Set<Member>();
  private unsubscribe?: () => void;
  private started = false;
  private downSince?: number;
  private attempt = 0;
  private retryTimer?: NodeJS.Timeout;
  private readonly outbox: Pending[] = [];
  /** Subgraph logs of this group's upstream subscription and entity fetches carry it. */
  readonly requestId = `sub-${randomUUID()}`;
  closed = false;
  private upstreamDone = false;

  constructor(
    private readonly engine: SubscriptionEngine,
    readonly key: string,
    readonly scope: string,
    readonly plan: SubscriptionPlan,
    readonly query: string,
    readonly variables: Record<string, unknown>,
    readonly viewer: Viewer,
  ) {}

  open(): void {
    void this.engine
      .contextFor(this)
      .then((ctx) => {
        if (this.closed) return;
        const p = this.plan.primary;
        const variables = Object.fromEntries(
          (p.variableUsages ?? []).filter((v) => v in this.variables).map((v) => [v, this.variables[v]]),
        );
        // A throw here (no such subgraph) must become a retry/give-up like a lost connection, not an unhandled
        // rejection.
        this.unsubscribe = this.engine.upstreams.subscribe(
          p.serviceName,
          {
            query: p.operation,
            operationName: p.operationName,
            variables,
            extensions: { internalToken: ctx.internalToken, requestId: ctx.requestId },
          },
          {
            next: (r) => this.onUpstream(r as ExecutionResult<Record<string, unknown>>),
            error: (e) => this.onUpstreamError(e),
            // graphql-ws Complete: the subgraph's stream has ended (a backfill's progress ends with its job), so
            // its members complete too. A subgraph going away closes the socket instead: that is an error, retried.
            complete: () => this.finishAfterOutbox(),
          },
        );
        this.engine.m.upstreamSubscribes.inc();
      })
      .catch((e) => this.onUpstreamLost(e));
  }

  private onUpstream(r: ExecutionResult<Record<string, unknown>>): void {
    if (this.closed) return;
    if (!r.data && r.errors?.length) {
      const errors = (r.errors as readonly GraphQLFormattedError[]).map((e) => formatError(e));
      // Before any event: refused at subscribe time (FORBIDDEN, NOT_FOUND...), the same answer for every member
      // of this scope. Later: one event failed; members get it as an event with errors and the stream goes on.
      if (!this.started) {
        this.end(errors);
        return;
      }
      this.deliver(Promise.resolve({ data: null, errors }));
      return;
    }
    this.started = true;
    this.downSince = undefined;
    this.attempt = 0;
    this.engine.m.events.inc();
    this.deliver(this.engine.completeEvent(this, r.data!));
  }

  /** Queues an event's result behind those before it (results are sent in arrival order). */
  private deliver(result: Promise<unknown>): void {
    if (this.outbox.length >= MAX_IN_FLIGHT) {
      this.outbox.shift();
      this.engine.m.conflated.inc({ where: 'group' });
    }
    const slot: Pending = {};
    this.outbox.push(slot);
    void result
      .then((value) => JSON.stringify(value))
      .catch((err) => {
        log.error({ err: (err as Error).message }, 'subscription event could not be completed');
        return JSON.stringify({
          data: null,
          errors: [{ message: 'Unexpected error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
        });
      })
      .then((payload) => {
        slot.payload = payload;
        this.flush();
      });
  }

  /** Sends completed events in the order they arrived, even though their entity fetches finish in any order. */
  private flush(): void {
    while (this.outbox.length && this.outbox[0]!.payload !== undefined) {
      const payload = this.outbox.shift()!.payload!;
      if (this.closed) continue;
      const frames = new Map<string, Buffer>();
      for (const m of this.members) m.next(payload, frames);
      this.engine.m.frames.inc(this.members.size);
    }
    if (this.upstreamDone && !this.outbox.length) this.end();
  }

  /** The upstream completed: members complete once the events before it are sent (their fetches may still run). */
  private finishAfterOutbox(): void {
    this.unsubscribe = undefined;
    this.upstreamDone = true;
    this.flush();
  }

  private onUpstreamError(e: unknown): void {
    if (Array.isArray(e)) {
      this.end(e.map((x) => formatError(x as GraphQLFormattedError))); // a graphql-ws `error` message
      return;
    }
    this.onUpstreamLost(e);
  }

  /** The subgraph went away: resubscribe with backoff (fresh token), or give up with a clear code. */
  private onUpstreamLost(e: unknown): void {
    if (this.closed) return;
    this.unsubscribe = undefined;
    this.downSince ??= Date.now();
    if (Date.now() - this.downSince > this.engine.giveUpAfterMs) {
      this.end([
        {
          message: `The ${this.plan.primary.serviceName} subgraph stopped serving this subscription`,
          extensions: { code: 'UPSTREAM_UNAVAILABLE' },
        },
      ]);
      return;
    }
    const reason =
      (e as { reason?: string; message?: string })?.reason ||
      (e as Error)?.message ||
      String((e as { code?: number })?.code ?? e);
    log.warn(
      { service: this.plan.primary.serviceName, reason, attempt: this.attempt, started: this.started },
      'subscription upstream lost; resubscribing',
    );
    const delay = Math.min(5000, 200 * 2 ** this.attempt++);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Ends the group: every member gets `errors` (or a plain completion) and the upstream is released. */
  end(errors?: readonly GraphQLFormattedError[]): void {
    if (this.closed) return;
    this.close();
    for (const m of this.members) errors ? m.error(errors) : m.complete();
    this.members.clear();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.engine.forget(this);
  }
}

/** Holds every subscription group of this gateway process. */
export class SubscriptionEngine {
  private readonly groups = new Map<string, Group>();
  private readonly groupOf = new Map<Member, Group>();
  private readonly internalToken: (key: string, viewer: Viewer) => Promise<string>;
  readonly upstreams: Upstreams;
  readonly giveUpAfterMs: number;
  private completer: EventCompleter;
  readonly m;

  constructor(
    private planner: SubscriptionPlanner,
    private readonly opts: EngineOptions,
  ) {
    this.giveUpAfterMs = opts.giveUpAfterMs ?? 30_000;
    this.completer = new EventCompleter(planner, opts.services);
    this.internalToken = createInternalTokenCache(opts.internalSecret);
    const gateway: Viewer = { sub: 'gateway', role: 'viewer', lines: [] }; // sees nothing on its own
    this.upstreams = new Upstreams(opts.subgraphUrls, () => signInternalToken(opts.internalSecret, gateway));
    const r = [opts.registry];
    this.m = {
      groups: new Gauge({
        name: 'hub_subscription_upstreams',
        help: 'Upstream subscriptions (one per group of identical subscriptions)',
        registers: r,
      }),
      members: new Gauge({ name: 'hub_subscription_members', help: 'Client subscriptions served', registers: r }),
      upstreamSubscribes: new Counter({
        name: 'hub_subscription_upstream_subscribes_total',
        help: 'Subscribe messages sent to subgraphs (resubscriptions included)',
        registers: r,
      }),
      events: new Counter({
        name: 'hub_subscription_events_total',
        help: 'Events received from subgraphs',
        registers: r,
      }),
      frames: new Counter({
        name: 'hub_subscription_frames_total',
        help: 'Event frames queued to clients',
        registers: r,
      }),
      conflated: new Counter({
        name: 'hub_subscription_conflated_total',
        help: 'Events replaced by a newer one before a slow client or a busy group could take them',
        labelNames: ['where'],
        registers: r,
      }),
    };
  }

  /** Adds a client subscription to its group, opening the group's upstream stream if it is the first. */
  join(
    member: Member,
    plan: SubscriptionPlan,
    query: string,
    variables: Record<string, unknown>,
    viewer: Viewer,
  ): void {
    const scope = scopeKey(viewer);
    const key = [query, plan.operationName ?? '', stableJson(variables), scope].join('\u0000');
    let g = this.groups.get(key);
    if (!g) {
      g = new Group(this, key, scope, plan, query, variables, viewer);
      this.groups.set(key, g);
      g.open();
    }
    g.members.add(member);
    this.groupOf.set(member, g);
    this.updateGauges();
  }

  /** Removes a client subscription; the upstream stream closes with the group's last member. */
  leave(member: Member): void {
    const g = this.groupOf.get(member);
    if (!g) return;
    this.groupOf.delete(member);
    g.members.delete(member);
    if (!g.members.size) g.close();
    this.updateGauges();
  }

  forget(g: Group): void {
    if (this.groups.get(g.key) === g) this.groups.delete(g.key);
    for (const m of g.members) this.groupOf.delete(m);
    this.updateGauges();
  }

  completeEvent(g: Group, data: Record<string, unknown>) {
    return this.contextFor(g).then((ctx) => this.completer.complete(g.plan, g.query, g.variables, ctx, data));
  }

  /** A group's context: its viewer and an internal token for its scope (re-signed as groups live for hours). */
  async contextFor(g: Group): Promise<GatewayContext> {
    return { viewer: g.viewer, requestId: g.requestId, internalToken: await this.internalToken(g.scope, g.viewer) };
  }

  /**
   * A new supergraph: plans may differ, so every subscription ends with SUBSCRIPTION_SCHEMA_RELOAD (clients
   * resubscribe).
   */
  reload(planner: SubscriptionPlanner): void {
    this.planner = planner;
    this.completer = new EventCompleter(planner, this.opts.services);
    for (const g of [...this.groups.values()])
      g.end([{ message: 'The schema changed; subscribe again', extensions: { code: 'SUBSCRIPTION_SCHEMA_RELOAD' } }]);
  }

  get currentPlanner(): SubscriptionPlanner {
    return this.planner;
  }

  /** Shutdown: every member gets `complete`, upstream streams are released. */
  async close(): Promise<void> {
    for (const g of [...this.groups.values()]) g.end();
    await this.upstreams.close();
  }

  private updateGauges(): void {
    this.m.groups.set(this.groups.size);
    this.m.members.set(this.groupOf.size);
  }
}

function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}
