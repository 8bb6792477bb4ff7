/**
 * The live channel: after a batch is committed, what was stored is published (QoS 0) for subscriptions and
 * dashboards. One message per line per batch, not per reading, so a 10,000-reading batch costs a handful of
 * publishes; consumers (the gateway's subscription engine) filter by sensor and machine. Best effort: the
 * rows in Postgres are the record, a missed live message is only a missed screen update.
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

export const LIVE_PREFIX = 'oee-hub/live';

export function publishLive(
  sink: LiveSink,
  prefix: string,
  readings: { lineId: string; reading: LiveReading }[],
  alerts: { lineId: string; alert: LiveAlert }[],
): void {
  const group = <T>(xs: { lineId: string }[], pick: (x: any) => T) => {
    const m = new Map<string, T[]>();
    for (const x of xs) {
      const l = m.get(x.lineId);
      if (l) l.push(pick(x));
      else m.set(x.lineId, [pick(x)]);
    }
    return m;
  };
  for (const [line, list] of group(readings, (x) => x.reading)) sink.publish(`${prefix}/readings/${line}`, Buffer.from(JSON.stringify(list)));
  for (const [line, list] of group(alerts, (x) => x.alert)) sink.publish(`${prefix}/alerts/${line}`, Buffer.from(JSON.stringify(list)));
}
