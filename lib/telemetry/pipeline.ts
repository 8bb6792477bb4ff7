import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Db } from '../db/index.ts';
import { log } from '../log.ts';
import type { SeriesInfo, TelemetryCaches } from './caches.ts';
import type { AlertRow } from '../db/rows.ts';
import {
  type CommitResult,
  commitBatch,
  insertLossEvent,
  insertStaleAlerts,
  type NewAlert,
  type NewDeadLetter,
} from './pipeline.repo.ts';
import { readingKey, type StoredState } from './readings.repo.ts';
import { SOURCE_CODES, type SourceName } from './sources.ts';
import type { BatchOutcome, IncomingReading, LossReport, SourceBatch, StoredReading, TelemetrySink } from './types.ts';
import { isRepeat, judge, outOfRangeAlert, refusal, rejectedDetail } from './validate.ts';

export interface PipelineOptions {
  /** Readings per commit (one statement). */
  batchMaxRows: number;
  /** How long the first reading of a batch may wait for others. */
  batchMaxDelayMs: number;
  /** Readings accepted but not yet committed before `submit` makes sources wait (backpressure). */
  maxQueuedRows: number;
  /** Same value again within this window (but another timestamp) counts as a duplicate and is not stored; 0 = off. */
  duplicateWindowMs: number;
  /** Quality given to readings a DEGRADE rule flags. */
  degradedQuality: number;
  /** Commit attempts per batch before its sources are told to redeliver. */
  commitAttempts: number;
  /** Batches committing at once: while Postgres commits one, the next is written (2 cores: 2). */
  commitConcurrency: number;
}

/** What a committed batch stored, for what runs after the commit (the live channel). */
export interface CommittedBatch {
  rows: StoredReading[];
  /** The series of each row, in the same order. */
  series: SeriesInfo[];
  /** The alerts raised with the batch (or by markStale), as stored. */
  alerts: AlertRow[];
  source: SourceName;
}

export interface PipelineHooks {
  /**
   * Called once a batch is committed and its sources acknowledged; must not throw or take long (the next batch
   * waits). The live channel publishes here.
   */
  afterCommit?: (batch: CommittedBatch) => void;
}

export const DEFAULT_PIPELINE: PipelineOptions = {
  batchMaxRows: 10_000,
  batchMaxDelayMs: 20,
  maxQueuedRows: 50_000,
  duplicateWindowMs: 0,
  degradedQuality: 50,
  commitAttempts: 5,
  commitConcurrency: 2,
};

/**
 * The ONE telemetry pipeline: resolve series → validate (range rules, duplicates, source quality) → enrich
 * (work order, recipe, shift, operator at the reading's time) → one transaction per batch → acknowledge the
 * sources. Sources never write; no stage knows which source fed it.
 */
export class TelemetryPipeline implements TelemetrySink {
  private queue: SourceBatch[] = [];
  /** Rows accepted and not yet committed (backpressure), and those of them not yet taken into a batch. */
  private queuedRows = 0;
  private pendingRows = 0;
  private waiters: (() => void)[] = [];
  private timer?: NodeJS.Timeout;
  /** The batch being resolved, validated and enriched (one at a time, in arrival order), and the commits running. */
  private preparing?: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  /** Take a partial batch at once: always once stop() was called; once when a reading waited batchMaxDelayMs. */
  private flushing = false;
  private due = false;
  private stopped = false;
  /** Series currently outside their range: an alert is raised when a series enters violation, not per reading. */
  private violating = new Set<number>();
  private last = new Map<number, { ts: number; value: number }>();
  private readonly m;
  /** When a batch last committed. */
  lastCommitAt = Date.now();

  constructor(
    private readonly db: Db,
    private readonly caches: TelemetryCaches,
    registry: Registry,
    private readonly opts: PipelineOptions = DEFAULT_PIPELINE,
    private readonly hooks: PipelineHooks = {},
  ) {
    this.m = {
      readings: new Counter({
        name: 'hub_ingest_readings_total',
        help: 'Readings by source and outcome',
        labelNames: ['source', 'outcome'] as const,
        registers: [registry],
      }),
      deadLetters: new Counter({
        name: 'hub_ingest_dead_letters_total',
        help: 'Dead letters by source and reason',
        labelNames: ['source', 'reason'] as const,
        registers: [registry],
      }),
      commitSeconds: new Histogram({
        name: 'hub_ingest_commit_seconds',
        help: 'Batch commit time',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
      commitFailures: new Counter({
        name: 'hub_ingest_commit_failures_total',
        help: 'Failed batch commits (retried)',
        registers: [registry],
      }),
      queued: new Gauge({
        name: 'hub_ingest_queued_readings',
        help: 'Readings accepted, not yet committed',
        registers: [registry],
      }),
    };
  }

  submit(batch: SourceBatch): Promise<void> {
    if (this.stopped) {
      batch.fail?.(new Error('pipeline stopped'));
      return Promise.resolve();
    }
    this.queue.push(batch);
    const n = size(batch);
    this.pendingRows += n;
    this.queuedRows += n;
    this.m.queued.set(this.queuedRows);
    this.schedule();
    if (this.queuedRows <= this.opts.maxQueuedRows) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Starts the next batch when one may start: no batch being prepared, fewer than `commitConcurrency` committing,
   * and either a full batch queued (or a flush asked for), or the first queued reading waited `batchMaxDelayMs`
   * and no commit is in flight (then the batch waits for that commit, and takes what arrived meanwhile).
   * Runs again whenever a reading arrives and whenever a batch is prepared or committed, so the next batch is
   * prepared while the last ones commit: with a bounded MQTT window (receiveMaximum), waiting for every commit
   * before preparing more would leave Postgres and the broker idle in turn.
   */
  private schedule(): void {
    if (this.queue.length === 0) return;
    const full = this.pendingRows >= this.opts.batchMaxRows || this.flushing;
    if (!full && !this.due) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.due = true;
        this.schedule();
      }, this.opts.batchMaxDelayMs);
      return;
    }
    if (this.preparing || this.inFlight.size >= this.opts.commitConcurrency) return;
    // A partial batch waits for the commits in flight (group commit): they free the MQTT window and bring more
    // readings, and every batch costs ~3 rollup upserts per series however few rows it has.
    if (!full && this.inFlight.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = false;
    this.preparing = this.nextBatch().finally(() => {
      this.preparing = undefined;
      this.schedule();
    });
  }

  /** Takes up to batchMaxRows from the queue, prepares them (in arrival order) and starts their commit. */
  private async nextBatch(): Promise<void> {
    const take: SourceBatch[] = [];
    let rows = 0;
    while (this.queue.length && (rows === 0 || rows + size(this.queue[0]!) <= this.opts.batchMaxRows)) {
      const b = this.queue.shift()!;
      rows += size(b);
      take.push(b);
    }
    this.pendingRows -= rows;
    const done = () => {
      this.queuedRows -= rows;
      this.m.queued.set(this.queuedRows);
      while (this.waiters.length && this.queuedRows <= this.opts.maxQueuedRows) this.waiters.shift()!();
    };
    let prepared: Awaited<ReturnType<TelemetryPipeline['prepare']>>;
    try {
      prepared = await this.prepare(take);
    } catch (err) {
      // The caches could not be refreshed (the database is away): the sources redeliver these later.
      log.warn({ err: (err as Error).message, rows }, 'telemetry batch not prepared');
      for (const b of take) b.fail?.(err as Error);
      done();
      return;
    }
    // Only the acknowledgements are kept past this point: the readings (and the raw payloads they point into)
    // can be collected while the commit runs, instead of surviving into the old generation.
    const sources = take.map(({ source, ack, fail }, i) => ({ source, ack, fail, part: prepared.parts[i]! }));
    take.length = 0;
    const committed: Promise<void> = this.finish(sources, prepared)
      .catch((err) => log.error({ err: (err as Error).message, rows }, 'telemetry batch not finished'))
      .finally(() => {
        this.inFlight.delete(committed);
        done();
        this.schedule();
      });
    this.inFlight.add(committed);
  }

  /** Resolve, validate and enrich: everything but the commit, in arrival order. */
  private async prepare(batches: SourceBatch[]) {
    await this.caches.ensureFresh();
    const rows: StoredReading[] = [];
    const placed: SeriesInfo[] = []; // the series of each row, for the live channel
    const states: StoredState[] = [];
    const dead: NewDeadLetter[] = [];
    const alerts: NewAlert[] = [];
    // Per source batch: where its rows and states are, and what was refused, for its outcome after the commit.
    const parts: Part[] = [];
    // Per source: stored/duplicate/rejected counts and dead letters by reason (a Map key per reading cost more than the
    // reading).
    const counts = new Map<
      string,
      { stored: number; duplicate: number; rejected: number; dead: Map<string, number> }
    >();

    for (const b of batches) {
      const source = SOURCE_CODES[b.source];
      let c0 = counts.get(b.source);
      if (!c0) {
        c0 = { stored: 0, duplicate: 0, rejected: 0, dead: new Map() };
        counts.set(b.source, c0);
      }
      const cnt = c0;
      const count = (reason: string) => cnt.dead.set(reason, (cnt.dead.get(reason) ?? 0) + 1);
      const part: Part = {
        rows: rows.length,
        rowsEnd: 0,
        states: states.length,
        statesEnd: 0,
        rejected: 0,
        unresolved: 0,
        repeated: 0,
        deadLetters: b.deadLetters.length,
      };
      parts.push(part);
      for (const d of b.deadLetters) {
        dead.push({
          source,
          reason: d.reason,
          detail: d.detail,
          topic: d.topic ?? null,
          payload: d.payload ?? null,
          sensorId: d.sensorId ?? null,
          machineId: d.sensorId ? (this.caches.get(d.sensorId)?.machineId ?? null) : null,
          dedupeKey: d.key ?? null,
        });
        count(d.reason);
      }
      for (const r of b.readings) {
        const s = this.caches.get(r.sensorId) ?? (await this.caches.resolveMiss(r.sensorId));
        const refused = refusal(r, s);
        if (refused || !s) {
          // An unknown or inactive sensor is not placed on a machine; a unit or value problem is the machine's.
          const where = s?.isActive ? { sensorId: s.sensorId, machineId: s.machineId } : { sensorId: r.sensorId };
          dead.push({ source, ...refused!, ...where, ...origin(r) });
          count(refused!.reason);
          part.rejected++;
          if (refused!.reason === 'UNKNOWN_SENSOR') part.unresolved++;
          continue;
        }
        if (r.state) {
          // A state is a name and a code: no range rule, scale or offset applies to it.
          const quality = r.sourceQuality ?? 100;
          states.push({ seriesId: s.seriesId, ts: r.ts, code: r.state.code, name: r.state.name, quality, source });
          cnt.stored++;
          continue;
        }
        const value = s.scale === 1 && s.offset === 0 ? r.value : r.value * s.scale + s.offset;
        const rule = s.rule;
        const verdict = judge(value, r.sourceQuality, rule, this.opts.degradedQuality);
        if (rule) {
          if (verdict.outside && !this.violating.has(s.seriesId)) {
            this.violating.add(s.seriesId);
            alerts.push(outOfRangeAlert(s, { ...r, value }, rule));
          } else if (!verdict.outside) this.violating.delete(s.seriesId);
          if (verdict.rejected) {
            const detail = rejectedDetail(value, s, rule);
            dead.push({
              source,
              reason: 'REJECTED_BY_RULE',
              detail,
              sensorId: s.sensorId,
              machineId: s.machineId,
              ...origin(r),
            });
            cnt.rejected++;
            part.rejected++;
            count('REJECTED_BY_RULE');
            continue;
          }
        }
        const ts = r.ts.getTime();
        if (this.opts.duplicateWindowMs > 0) {
          if (isRepeat(this.last.get(s.seriesId), ts, value, this.opts.duplicateWindowMs)) {
            cnt.duplicate++;
            part.repeated++;
            continue;
          }
          this.last.set(s.seriesId, { ts, value });
        }
        const c = this.caches.context.lookup(s.lineId, ts);
        rows.push({
          seriesId: s.seriesId,
          ts: r.ts,
          value,
          quality: Math.round(verdict.quality),
          source,
          workOrderId: c.workOrderId,
          recipeId: c.recipeId,
          shiftId: c.shiftId,
          operatorId: c.operatorId,
        });
        placed.push(s);
        cnt.stored++;
      }
      part.rowsEnd = rows.length;
      part.statesEnd = states.length;
    }

    return { rows, placed, states, dead, alerts, counts, parts };
  }

  /** Commit, then acknowledge the sources, publish live and count. */
  private async finish(
    batches: (Pick<SourceBatch, 'source' | 'ack' | 'fail'> & { part: Part })[],
    p: Awaited<ReturnType<TelemetryPipeline['prepare']>>,
  ): Promise<void> {
    const { rows, placed, states, dead, alerts, counts } = p;
    const stored = await this.commit(rows, dead, alerts, states);
    if (!stored) {
      for (const b of batches) b.fail?.(new Error('the batch could not be committed'));
      return;
    }
    for (const b of batches) {
      // One source's failing acknowledgement must not leave the others unacknowledged (they would wait for ever).
      try {
        b.ack(outcomeOf(b.part, rows, states, stored));
      } catch (err) {
        log.error({ err: (err as Error).message, source: b.source }, 'a source failed to take its acknowledgement');
      }
    }
    this.afterCommit({ rows, series: placed, alerts: stored.alerts, source: batches[0]!.source });
    for (const [source, c] of counts) {
      for (const outcome of ['stored', 'duplicate', 'rejected'] as const)
        if (c[outcome]) this.m.readings.inc({ source, outcome }, c[outcome]);
      for (const [reason, n] of c.dead) this.m.deadLetters.inc({ source, reason }, n);
    }
  }

  /** The hook must not take the pipeline down: a failed live publish is a missed screen update, never lost data. */
  private afterCommit(b: CommittedBatch): void {
    if (!this.hooks.afterCommit) return;
    try {
      this.hooks.afterCommit(b);
    } catch (err) {
      log.warn({ err: (err as Error).message, source: b.source }, 'after-commit hook failed');
    }
  }

  /** Retries a failed commit with backoff (the database may be restarting); after that, sources redeliver. */
  /** The stored alerts when committed, else undefined. */
  private async commit(
    rows: StoredReading[],
    dead: NewDeadLetter[],
    alerts: NewAlert[],
    states: StoredState[],
  ): Promise<CommitResult | undefined> {
    for (let attempt = 1; ; attempt++) {
      const end = this.m.commitSeconds.startTimer();
      try {
        const stored = await commitBatch(this.db, rows, dead, alerts, states);
        end();
        this.lastCommitAt = Date.now();
        return stored;
      } catch (err) {
        this.m.commitFailures.inc();
        log.warn({ err: (err as Error).message, attempt, rows: rows.length }, 'telemetry commit failed');
        if (attempt >= this.opts.commitAttempts) return undefined;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }

  /** A loss the source could detect but not prevent (a Sparkplug seq gap): recorded for the data-quality report. */
  recordLoss(e: LossReport): void {
    void insertLossEvent(this.db, { ...e, source: SOURCE_CODES[e.source] }).catch((err) =>
      log.error({ err: err.message }, 'loss event not recorded'),
    );
  }

  /** Marks the sensors under a prefix stale (their node or device died): one STALE alert each. */
  markStale(source: SourceName, prefix: string, reason: string, at: Date): void {
    const sensors = this.caches.byPrefix(prefix);
    void insertStaleAlerts(this.db, sensors, reason, at)
      .then((stored) => this.afterCommit({ rows: [], series: [], alerts: stored, source }))
      .catch((err) => log.error({ err: err.message }, 'stale alerts not raised'));
  }

  /** Commits what is queued, then refuses new batches. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = true;
    this.schedule();
    while (this.preparing || this.inFlight.size || this.queue.length) {
      await (this.preparing ?? Promise.race(this.inFlight));
      this.schedule();
    }
    this.stopped = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

const size = (b: SourceBatch) => b.readings.length + b.deadLetters.length;

/** One source batch's share of a prepared batch: its rows and states (index ranges) and what it had refused. */
interface Part {
  rows: number;
  rowsEnd: number;
  states: number;
  statesEnd: number;
  rejected: number;
  unresolved: number;
  /** Repeats of the last value within duplicateWindowMs, not stored. */
  repeated: number;
  deadLetters: number;
}

/**
 * A source batch's outcome: its rows that the commit stored anew, and those it did not (already stored). A key met
 * twice in one commit (two sources sent the same reading) is new for the first only.
 */
function outcomeOf(part: Part, rows: StoredReading[], states: StoredState[], c: CommitResult): BatchOutcome {
  let stored = 0;
  let duplicate = part.repeated;
  const take = (fresh: Set<string> | 'all', seriesId: number, ts: Date) => {
    if (fresh === 'all' || fresh.delete(readingKey(seriesId, ts.getTime()))) stored++;
    else duplicate++;
  };
  for (let i = part.rows; i < part.rowsEnd; i++) take(c.newReadings, rows[i]!.seriesId, rows[i]!.ts);
  for (let i = part.states; i < part.statesEnd; i++) take(c.newStates, states[i]!.seriesId, states[i]!.ts);
  return { stored, duplicate, rejected: part.rejected, deadLetters: part.deadLetters, unresolved: part.unresolved };
}

/**
 * A refused reading's dead letter keeps the source's topic and raw payload, or the reading itself when there is none.
 */
function origin(r: IncomingReading): { topic: string | null; payload: Buffer } {
  return {
    topic: r.origin?.topic ?? null,
    payload: r.origin?.payload ?? Buffer.from(JSON.stringify({ sensorId: r.sensorId, ts: r.ts, value: r.value })),
  };
}
