import pg from 'pg';
import type { Db } from '../db/index.ts';
import type { RangeRuleRow } from '../db/rows.ts';
import { log } from '../log.ts';
import { ContextIndex } from './context-index.ts';
import { loadActiveRules, loadSchedule, loadSensorSeries, loadTagSeries } from './pipeline.repo.ts';

/**
 * How readings name a historian tag's series: `@` can start no sensor id (iot.sensors' check), so a tag's key never
 * meets a sensor's.
 */
export const tagSeriesKey = (tagMappingId: string): string => `@tag:${tagMappingId}`;

export interface SeriesInfo {
  seriesId: number;
  /** The sensor id, or the tag's series key (tagSeriesKey) for a historian tag. */
  sensorId: string;
  /** Set for a historian tag's series: alerts then name no sensor. */
  tagMappingId?: string;
  /** value stored = raw × scale + offset (a tag mapping's; 1 and 0 for a sensor). */
  scale: number;
  offset: number;
  machineId: string;
  lineId: string;
  signal: string;
  unit: string;
  isActive: boolean;
  rule?: RangeRuleRow;
}

/** Context is kept for work orders and shifts within this window around now (backfills older than that get none). */
const SCHEDULE_PAST_MS = 400 * 86_400_000;
const SCHEDULE_FUTURE_MS = 60 * 86_400_000;

/**
 * What the pipeline needs per reading, in memory: sensor → series/machine/line, its range rule, and the
 * production context index. A LISTEN connection marks it stale when those tables change (triggers from
 * migration 0002); the pipeline reloads before its next batch, so a new sensor or work order applies at once.
 */
export class TelemetryCaches {
  private series = new Map<string, SeriesInfo>();
  private machineLines = new Map<string, string>();
  readonly context = new ContextIndex();
  private stale = true;
  private loading?: Promise<void>;
  private listener?: pg.Client;
  private lastMissReload = 0;

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
  ) {}

  async start(): Promise<void> {
    await this.listen();
    await this.ensureFresh();
  }

  /** A dedicated connection (not a pooled one: LISTEN is per session); reconnects, and reloads after a gap. */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 10_000 });
    client.on('notification', () => (this.stale = true));
    client.on('error', (err) => {
      log.warn({ err: err.message }, 'change listener lost; reconnecting');
      this.stale = true;
      this.listener = undefined;
      setTimeout(
        () => void this.listen().catch((e) => log.error({ err: e.message }, 'change listener failed')),
        1000,
      ).unref();
    });
    await client.connect();
    await client.query('listen hub_changes');
    this.listener = client;
  }

  /** Sensors whose id starts with a prefix (a Sparkplug node or device). */
  byPrefix(prefix: string): SeriesInfo[] {
    return [...this.series.values()].filter((s) => s.sensorId.startsWith(prefix));
  }

  get(sensorId: string): SeriesInfo | undefined {
    return this.series.get(sensorId);
  }

  /** The line of a machine that has at least one sensor (alerts are published per line). */
  lineOfMachine(machineId: string): string | undefined {
    return this.machineLines.get(machineId);
  }

  /**
   * An unknown sensor may have been registered a moment ago (the NOTIFY still on its way): reload at most
   * once a second on a miss, rather than dead-lettering readings of a sensor created just now.
   */
  async resolveMiss(sensorId: string): Promise<SeriesInfo | undefined> {
    if (Date.now() - this.lastMissReload < 1000) return undefined;
    this.lastMissReload = Date.now();
    this.stale = true;
    await this.ensureFresh();
    return this.series.get(sensorId);
  }

  async ensureFresh(): Promise<void> {
    if (!this.stale) return;
    this.loading ??= this.reload().finally(() => (this.loading = undefined));
    await this.loading;
  }

  private async reload(): Promise<void> {
    this.stale = false;
    const now = Date.now();
    const [sensors, tags, rules, schedule] = await Promise.all([
      loadSensorSeries(this.db),
      loadTagSeries(this.db),
      loadActiveRules(this.db),
      loadSchedule(this.db, new Date(now - SCHEDULE_PAST_MS), new Date(now + SCHEDULE_FUTURE_MS)),
    ]).catch((e) => {
      this.stale = true;
      throw e;
    });
    // A sensor's own rule wins over a rule for its machine and signal type.
    const bySensor = new Map(rules.filter((r) => r.sensorId).map((r) => [r.sensorId!, r]));
    const byMachineSignal = new Map(
      rules.filter((r) => !r.sensorId).map((r) => [`${r.machineId}\u0000${r.signalType}`, r]),
    );
    const series = new Map<string, SeriesInfo>();
    for (const s of sensors) {
      series.set(s.sensorId, {
        seriesId: s.seriesId,
        sensorId: s.sensorId,
        machineId: s.machineId,
        lineId: s.lineId,
        signal: s.type,
        unit: s.unit,
        isActive: s.isActive,
        scale: 1,
        offset: 0,
        rule: bySensor.get(s.sensorId) ?? byMachineSignal.get(`${s.machineId}\u0000${s.type}`),
      });
    }
    // A tag's series takes its machine's rule for its signal (no rule names a tag).
    for (const t of tags) {
      const key = tagSeriesKey(t.tagMappingId);
      series.set(key, {
        seriesId: t.seriesId,
        sensorId: key,
        tagMappingId: t.tagMappingId,
        machineId: t.machineId,
        lineId: t.lineId,
        signal: t.signalType,
        unit: t.unit,
        isActive: t.isActive,
        scale: t.scaleFactor,
        offset: t.valueOffset,
        rule: byMachineSignal.get(`${t.machineId}\u0000${t.signalType}`),
      });
    }
    this.series = series;
    this.machineLines = new Map(sensors.map((s) => [s.machineId, s.lineId]));
    const t = (d: Date | null) => (d ? d.getTime() : null);
    this.context.replace(
      schedule.orders.map((o) => ({
        lineId: o.lineId,
        start: t(o.actualStart) ?? t(o.plannedStart)!,
        end: t(o.actualEnd) ?? (o.status === 'ACTIVE' ? Infinity : t(o.plannedEnd)!),
        workOrderId: o.id,
        recipeId: o.recipeId,
        productId: o.productId,
        rank: (o.actualStart ? 0 : o.status === 'ACTIVE' ? 0 : 100) + o.priority,
      })),
      schedule.shifts.map((s) => ({
        lineId: s.lineId,
        start: s.startsAt.getTime(),
        end: s.endsAt.getTime(),
        shiftId: s.id,
        operatorId: s.operatorId,
      })),
    );
  }

  async stop(): Promise<void> {
    const l = this.listener;
    this.listener = undefined;
    l?.removeAllListeners('error');
    l?.on('error', () => {});
    await l?.end().catch(() => {});
  }
}
