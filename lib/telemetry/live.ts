/**
 * The live channel: after a batch is committed, what was stored is published (QoS 0) for subscriptions and
 * dashboards. One message per line per batch, not per reading, so a 10,000-reading batch costs a handful of
 * publishes; consumers (the gateway's subscription engine) filter by sensor and machine. Best effort: the
 * rows in Postgres are the record, a missed live message is only a missed screen update.
 *
 * Only while somebody listens: a consumer announces itself with a retained message on
 * `<prefix>/listeners/<its id>` naming the kinds it reads ("readings", "alerts" or "readings,alerts"), sets the
 * same topic with an empty payload as its MQTT will, and clears it when it stops. Encoding and sending every
 * reading a second time cost the ingest ~30% of its CPU (bench/README.md, "ingest"), for nobody when no
 * dashboard is open, as during a backfill or a drain after an outage. iot.yml `live.publish: always` turns this off.
 */
export interface LiveReading {
  sensorId: string;
  /** The sensor's type (temperature, vibration...), so consumers can filter without a lookup. */
  sensorType: string;
  machineId: string;
  ts: string;
  value: number;
  quality: number;
  source: string;
  workOrderId: string | null;
  operatorId: string | null;
}
/** An alert as stored (its id included), dates as ISO strings. */
export interface LiveAlert {
  id: string;
  machineId: string;
  sensorId: string | null;
  type: string;
  severity: string;
  ts: string;
  metric: string;
  value: number | null;
  expectedMin: number | null;
  expectedMax: number | null;
  message: string | null;
  createdAt: string;
}

export interface LiveSink {
  publish(topic: string, payload: Buffer): void;
}

/** The default topic prefix (iot.yml live.topicPrefix, hub.yml mqtt.liveTopicPrefix). */
export { LIVE_PREFIX } from '../config/iot.ts';

export function publishLive(
  sink: LiveSink,
  prefix: string,
  /** Readings already encoded (LiveReadingEncoder), by line. */
  readings: { lineId: string; json: string }[],
  alerts: { lineId: string; alert: LiveAlert }[],
): void {
  const group = <X extends { lineId: string }, T>(xs: X[], pick: (x: X) => T) => {
    const m = new Map<string, T[]>();
    for (const x of xs) {
      const l = m.get(x.lineId);
      if (l) l.push(pick(x));
      else m.set(x.lineId, [pick(x)]);
    }
    return m;
  };
  for (const [line, list] of group(readings, (x) => x.json))
    sink.publish(`${prefix}/readings/${line}`, Buffer.from(`[${list.join(',')}]`));
  for (const [line, list] of group(alerts, (x) => x.alert))
    sink.publish(`${prefix}/alerts/${line}`, Buffer.from(JSON.stringify(list)));
}

/**
 * A LiveReading as JSON, exactly as JSON.stringify writes it, but with the sensor's constant fields encoded once
 * per sensor: with a dashboard open every committed reading is encoded, and building an object per reading for
 * JSON.stringify cost the ingest about twice as much.
 */
export class LiveReadingEncoder {
  private readonly heads = new Map<string, { sensorType: string; machineId: string; json: string }>();

  encode(r: LiveReading): string {
    let head = this.heads.get(r.sensorId);
    // A sensor may be moved to another machine or retyped: the cached part must still be its own.
    if (head === undefined || head.sensorType !== r.sensorType || head.machineId !== r.machineId) {
      if (this.heads.size >= 100_000) this.heads.clear();
      const json =
        `{"sensorId":${JSON.stringify(r.sensorId)},"sensorType":${JSON.stringify(r.sensorType)},` +
        `"machineId":${JSON.stringify(r.machineId)}`;
      head = { sensorType: r.sensorType, machineId: r.machineId, json };
      this.heads.set(r.sensorId, head);
    }
    // Numbers: JSON.stringify writes a finite number as String() does (the pipeline admits finite values only).
    // One template (its lines break inside the substitutions only): the same concatenations as ever, per reading.
    return `${head.json},"ts":"${r.ts}","value":${r.value},"quality":${r.quality},"source":${JSON.stringify(
      r.source,
    )},"workOrderId":${r.workOrderId === null ? 'null' : JSON.stringify(r.workOrderId)},"operatorId":${
      r.operatorId === null ? 'null' : JSON.stringify(r.operatorId)
    }}`;
  }
}

export type LiveKind = 'readings' | 'alerts';
export const LIVE_KINDS: readonly LiveKind[] = ['readings', 'alerts'];

/** Where a live-channel consumer announces itself (retained; empty payload = gone). */
export const listenerTopic = (prefix: string, listenerId: string): string => `${prefix}/listeners/${listenerId}`;
/** What a consumer announces: the kinds it reads, comma-separated; empty when it reads none. */
export const listenerPayload = (kinds: Iterable<LiveKind>): Buffer => Buffer.from([...kinds].join(','));
/** A consumer's MQTT will: should its connection die, the broker clears its announcement. */
export const listenerWill = (prefix: string, listenerId: string) => ({
  topic: listenerTopic(prefix, listenerId),
  payload: Buffer.alloc(0),
  qos: 1 as const,
  retain: true,
});

/** Who listens to the live channel, as the ingest learns it from the retained announcements. */
export class LiveAudience {
  private readonly listeners = new Map<string, ReadonlySet<LiveKind>>();

  constructor(private readonly prefix: string) {}

  /** The filter the ingest subscribes to (QoS 0, never shared: every worker must know every listener). */
  get filter(): string {
    return listenerTopic(this.prefix, '+');
  }

  /** Takes an announcement; false if the topic is not one. Unknown kinds are ignored (newer consumers). */
  update(topic: string, payload: Buffer): boolean {
    const head = listenerTopic(this.prefix, '');
    if (!topic.startsWith(head) || topic.length === head.length) return false;
    const id = topic.slice(head.length);
    const kinds = new Set(
      payload
        .toString('utf8')
        .split(',')
        .map((k) => k.trim())
        .filter((k): k is LiveKind => (LIVE_KINDS as string[]).includes(k)),
    );
    if (kinds.size) this.listeners.set(id, kinds);
    else this.listeners.delete(id);
    return true;
  }

  /** Forgets every listener (the ingest reconnected; the retained announcements come again). */
  clear(): void {
    this.listeners.clear();
  }

  /** Announced listeners (hub_live_listeners). */
  get size(): number {
    return this.listeners.size;
  }

  /** Asked once per committed batch; a plant has a handful of listeners. */
  wants(kind: LiveKind): boolean {
    for (const kinds of this.listeners.values()) if (kinds.has(kind)) return true;
    return false;
  }
}
