import mqtt, { type MqttClient } from 'mqtt';
import { Counter, Gauge, type Registry } from 'prom-client';
import { log } from '../log.ts';
import {
  LIVE_KINDS,
  listenerPayload,
  listenerTopic,
  listenerWill,
  type LiveAlert,
  type LiveKind,
  type LiveReading,
} from '../telemetry/live.ts';
import { PushQueue } from './push-queue.ts';

export type { LiveKind };
export type LiveEvent<K extends LiveKind> = (K extends 'readings' ? LiveReading : LiveAlert) & { lineId: string };

/** What one subscription wants: `machineIds` narrows the dispatch (an index), `match` decides the rest. */
export interface LiveInterest<K extends LiveKind> {
  machineIds?: ReadonlySet<string>;
  match: (e: LiveEvent<K>) => boolean;
}

interface Listener<K extends LiveKind> extends LiveInterest<K> {
  queue: PushQueue<LiveEvent<K>>;
}

/** How long a kind stays announced and subscribed after its last subscription ended. */
const LINGER_MS = 5000;
/** How long close() waits for a sync in progress or a connection being made. */
const CLOSE_WAIT_MS = 2000;
/** How long the broker keeps our retained announcement unless renewed (every third of it). */
const ANNOUNCEMENT_TTL_S = 3600;

/** Events a subscription may hold while its consumer (the gateway) is slower than the feed; beyond: oldest dropped. */
const MAX_QUEUED = 10_000;

/**
 * A subgraph's view of the live channel (`<prefix>/readings/<line>`, `<prefix>/alerts/<line>`, one JSON array
 * per committed batch; see lib/telemetry/live.ts). Subscriptions register an interest and get an async
 * iterator; the broker topic is subscribed, and this feed announced as a listener (the ingest publishes only
 * while someone listens), while at least one interest of its kind exists. QoS 0: the rows in Postgres are the
 * record, a live message is a screen update.
 */
export class LiveFeed {
  private client?: Promise<MqttClient>;
  private readonly listeners = { readings: new Listeners<'readings'>(), alerts: new Listeners<'alerts'>() };
  /** The live topics this connection is subscribed to, and the (un)subscribing in progress: see sync(). */
  private readonly subscribed = { readings: false, alerts: false };
  private syncing: Promise<void> = Promise.resolve();
  private retry?: NodeJS.Timeout;
  private readonly emptiedAt = { readings: 0, alerts: 0 };
  private closed = false;
  private readonly m;

  constructor(
    private readonly url: string,
    private readonly prefix: string,
    registry: Registry,
    private readonly clientId = `oee-hub-live-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  ) {
    this.m = {
      active: new Gauge({
        name: 'hub_live_subscriptions',
        help: 'Live subscriptions served by this subgraph',
        labelNames: ['kind'],
        registers: [registry],
      }),
      events: new Counter({
        name: 'hub_live_events_total',
        help: 'Live events delivered to subscriptions',
        labelNames: ['kind'],
        registers: [registry],
      }),
      dropped: new Counter({
        name: 'hub_live_dropped_total',
        help: 'Live events dropped because a subscription fell 10,000 behind',
        labelNames: ['kind'],
        registers: [registry],
      }),
      malformed: new Counter({
        name: 'hub_live_malformed_total',
        help: 'Live-channel messages that were not a JSON array',
        registers: [registry],
      }),
    };
  }

  /** An async iterator of the events matching `interest`; ending it (return()) removes the interest. */
  subscribe<K extends LiveKind>(kind: K, interest: LiveInterest<K>): AsyncIterableIterator<LiveEvent<K>> {
    const set = this.listeners[kind] as unknown as Listeners<K>;
    const listener: Listener<K> = {
      ...interest,
      queue: new PushQueue<LiveEvent<K>>(
        MAX_QUEUED,
        () => this.m.dropped.inc({ kind }),
        () => {
          set.remove(listener);
          this.m.active.set({ kind }, set.size);
          if (set.size === 0) {
            // Kept announced and subscribed a little longer: a dashboard reloading (or a test starting its next
            // subscription) would otherwise miss what the ingest commits while the announcement goes and comes.
            this.emptiedAt[kind] = Date.now();
            setTimeout(() => this.sync(), LINGER_MS + 10).unref();
          }
        },
      ),
    };
    set.add(listener);
    if (set.size === 1) this.sync();
    // Counted once the feed is announced and subscribed (hub_live_subscriptions): readings published from then
    // on reach the ingest after our announcement (the broker keeps order), so they reach this subscription.
    void this.syncing.then(() => this.m.active.set({ kind }, set.size));
    return listener.queue;
  }

  private connect(): Promise<MqttClient> {
    // Should this connection die, the broker clears our announcement (the ingest stops publishing for us).
    const announcement = listenerTopic(this.prefix, this.clientId);
    const options = {
      clientId: this.clientId,
      clean: true,
      connectTimeout: 10_000,
      reconnectPeriod: 1000,
      will: listenerWill(this.prefix, this.clientId),
    };
    // MQTT 5 for the announcement's expiry; 3.1.1 where the broker refuses 5 (the embedded aedes broker does).
    this.client ??= mqtt
      .connectAsync(this.url, { ...options, protocolVersion: 5 })
      .catch((err: { code?: number }) => {
        if (err.code !== 1 && err.code !== 0x84) throw err;
        return mqtt.connectAsync(this.url, { ...options, protocolVersion: 4 });
      })
      .then((c) => {
        c.on('message', (topic, payload) => {
          // Our own will, sent late for an old connection, must not silence us while we still have listeners.
          if (topic === announcement)
            return void (payload.length === 0 && this.hasListeners() && this.announce(c).catch(() => {}));
          this.dispatch(topic, payload);
        });
        c.on('error', (err) => log.warn({ err: err.message }, 'live channel error'));
        // clean session: after a reconnect the broker has forgotten our subscriptions (and may have sent our will).
        const watch = () =>
          void c
            .subscribeAsync(announcement, { qos: 1 })
            .catch((err) => log.warn({ err: err.message }, 'live channel: own announcement not watched'));
        c.on('connect', () => {
          watch();
          this.subscribed.readings = this.subscribed.alerts = false;
          this.sync();
        });
        watch();
        // Announcements expire (a will the broker lost must not leave the ingest publishing for nobody forever),
        // so they are renewed while we listen.
        const renew = setInterval(
          () => this.hasListeners() && void this.announce(c).catch(() => {}),
          (ANNOUNCEMENT_TTL_S * 1000) / 3,
        );
        renew.unref();
        c.on('end', () => clearInterval(renew));
        return c;
      })
      .catch((err) => {
        this.client = undefined;
        throw err;
      });
    return this.client;
  }

  /**
   * Brings the broker in line with the interests: the announcement, then the topic subscriptions. One run at a
   * time, each from the state at that moment, so a subscription that ends while another starts cannot leave the
   * topic unsubscribed or the announcement empty with a listener present.
   */
  private sync(): void {
    if (this.closed) return;
    this.syncing = this.syncing
      .then(() => this.reconcile())
      .catch((err) => {
        log.error({ err: (err as Error).message }, 'live channel subscribe failed; retrying');
        // One retry pending at a time, however many changes failed meanwhile: it reconciles them all.
        if (!this.closed && !this.retry) {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.sync();
          }, 2000);
          this.retry.unref();
        }
      });
  }

  private async reconcile(): Promise<void> {
    if (this.closed || (!this.hasListeners() && !this.client)) return;
    const c = await this.connect();
    // Announce first. The ingest learns of us through the broker, a moment later; readings of a commit that
    // happens meanwhile are not published for us (the first batch or so): a live view starts "from about now".
    await this.announce(c);
    for (const kind of LIVE_KINDS) {
      const want = this.wanted(kind);
      if (want === this.subscribed[kind]) continue;
      if (want) await c.subscribeAsync(`${this.prefix}/${kind}/+`, { qos: 0 });
      else await c.unsubscribeAsync(`${this.prefix}/${kind}/+`);
      this.subscribed[kind] = want;
    }
  }

  /** Tells the ingest (retained) which kinds this feed reads now; none clears the announcement. */
  private announce(c: MqttClient, kinds = LIVE_KINDS.filter((k) => this.wanted(k))): Promise<unknown> {
    const properties =
      kinds.length && c.options.protocolVersion === 5 ? { messageExpiryInterval: ANNOUNCEMENT_TTL_S } : undefined;
    return c.publishAsync(listenerTopic(this.prefix, this.clientId), listenerPayload(kinds), {
      qos: 1,
      retain: true,
      properties,
    });
  }

  /** A kind is wanted while it has listeners, and for LINGER_MS after its last one left. */
  private wanted(kind: LiveKind): boolean {
    return this.listeners[kind].size > 0 || Date.now() - this.emptiedAt[kind] < LINGER_MS;
  }

  private hasListeners(): boolean {
    return this.listeners.readings.size + this.listeners.alerts.size > 0;
  }

  private dispatch(topic: string, payload: Buffer): void {
    const rest = topic.slice(this.prefix.length + 1);
    const slash = rest.indexOf('/');
    const kind = rest.slice(0, slash);
    if (kind !== 'readings' && kind !== 'alerts') return;
    const lineId = rest.slice(slash + 1);
    let events: unknown;
    try {
      events = JSON.parse(payload.toString('utf8'));
    } catch {
      events = undefined;
    }
    if (!Array.isArray(events)) {
      this.m.malformed.inc();
      return;
    }
    let delivered = 0;
    for (const e of events as LiveEvent<LiveKind>[]) {
      e.lineId = lineId;
      delivered += this.listeners[kind].offer(e as never);
    }
    if (delivered) this.m.events.inc({ kind }, delivered);
  }

  async close(): Promise<void> {
    for (const set of Object.values(this.listeners)) set.closeAll();
    this.closed = true;
    clearTimeout(this.retry);
    // A sync stuck on an unreachable broker (a QoS 1 publish waits for a reconnect) must not hold up shutdown.
    const orGiveUp = <T>(p: Promise<T> | undefined) =>
      Promise.race([p, new Promise<undefined>((r) => void setTimeout(() => r(undefined), CLOSE_WAIT_MS).unref())]);
    await orGiveUp(this.syncing);
    const c = await orGiveUp(this.client?.catch(() => undefined));
    if (c?.connected) await orGiveUp(this.announce(c, []).catch(() => {})); // clears the announcement
    await c?.endAsync(true).catch(() => {});
  }
}

/** The interests of one kind, indexed by machine so a reading is tested only against subscriptions that may want it. */
class Listeners<K extends LiveKind> {
  private readonly byMachine = new Map<string, Set<Listener<K>>>();
  private readonly general = new Set<Listener<K>>();
  size = 0;

  add(l: Listener<K>): void {
    this.size++;
    if (!l.machineIds) {
      this.general.add(l);
      return;
    }
    for (const m of l.machineIds) {
      let set = this.byMachine.get(m);
      if (!set) {
        set = new Set();
        this.byMachine.set(m, set);
      }
      set.add(l);
    }
  }

  remove(l: Listener<K>): void {
    if (!l.machineIds) {
      if (this.general.delete(l)) this.size--;
      return;
    }
    let removed = false;
    for (const m of l.machineIds) {
      const set = this.byMachine.get(m);
      if (set?.delete(l)) removed = true;
      if (set && !set.size) this.byMachine.delete(m);
    }
    if (removed) this.size--;
  }

  /** Pushes the event to every interest that matches; returns how many took it. */
  offer(e: LiveEvent<K>): number {
    let n = 0;
    const specific = this.byMachine.get(e.machineId);
    if (specific) {
      for (const l of specific) {
        if (l.match(e)) {
          l.queue.push(e);
          n++;
        }
      }
    }
    for (const l of this.general) {
      if (l.match(e)) {
        l.queue.push(e);
        n++;
      }
    }
    return n;
  }

  closeAll(): void {
    const all = new Set([...this.general, ...[...this.byMachine.values()].flatMap((s) => [...s])]);
    for (const l of all) void l.queue.return();
  }
}
