import type { HistorianFile } from '../../../lib/config/historian.ts';
import type { HistorianConnector } from '../../../lib/connectors/historian/types.ts';
import type { Db } from '../../../lib/db/index.ts';
import type { JobRunner } from '../../../lib/jobs/runner.ts';
import { log } from '../../../lib/log.ts';
import type { SourceContext, SourceStatus, TelemetrySource } from '../../../lib/telemetry/source.ts';
import type { TelemetrySink } from '../../../lib/telemetry/types.ts';
import { jobsToRun } from './backfill.repo.ts';
import { frontfillRound } from './frontfill.ts';
import { runBackfill } from './run-backfill.ts';

export const BACKFILL_QUEUE = 'historian-backfill';
export const FRONTFILL_QUEUE = 'historian-frontfill';

export interface HistorianSourceOptions {
  connectors: ReadonlyMap<string, HistorianConnector>;
  jobs: JobRunner;
  settings: Pick<HistorianFile, 'backfill' | 'frontfill'>;
  /** The frontfill's clock (tests move it). */
  now?: () => number;
}

/**
 * The historians as a TelemetrySource: backfill jobs and frontfill rounds run on the one job runner and hand every
 * page to the one pipeline (the sink). Any instance may run any job: a lease in the job's row keeps two apart, and
 * a sweep every lease period sends the jobs that wait (PENDING, or RUNNING under a lapsed lease) to the runner.
 * `short` queues hold one queued job per backfill (the sweep may send it often); the frontfill is `stately`: one
 * round at a time across every instance, however many ticks send one.
 */
export class HistorianSource implements TelemetrySource {
  readonly name = 'historian';
  readonly kind = 'HISTORIAN' as const;
  private readonly counters: Record<string, number> = {};
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private state: SourceStatus['state'] = 'STOPPED';
  private problem?: string;
  private db?: Db;

  constructor(private readonly o: HistorianSourceOptions) {}

  async start(sink: TelemetrySink, ctx: SourceContext): Promise<void> {
    this.state = 'STARTING';
    this.db = ctx.db;
    const { backfill, frontfill } = this.o.settings;
    const worker = `${ctx.worker}/${process.pid}`;
    await this.o.jobs.work<{ jobId: string }>(
      BACKFILL_QUEUE,
      { policy: 'short', retryLimit: 0, expireInSeconds: 23 * 3600 },
      ({ jobId }) =>
        runBackfill(
          {
            db: ctx.db,
            sink,
            connectors: this.o.connectors,
            settings: backfill,
            worker,
            counters: this.counters,
            stopping: () => this.stopping,
          },
          jobId,
        ),
    );
    this.every(backfill.leaseSeconds * 1000, () => this.sweep());
    if (frontfill.enabled && this.o.connectors.size) {
      // A catch-up round may be long (a hub down for days): it must not expire and let a second round run beside it.
      await this.o.jobs.work(FRONTFILL_QUEUE, { policy: 'stately', retryLimit: 0, expireInSeconds: 23 * 3600 }, () =>
        frontfillRound({
          db: ctx.db,
          sink,
          connectors: this.o.connectors,
          settings: frontfill,
          maxTagAttempts: backfill.maxTagAttempts,
          checkpointMs: backfill.checkpointMs,
          now: this.o.now ?? Date.now,
          counters: this.counters,
          stopping: () => this.stopping,
        }),
      );
      // At start first: a hub that was down catches up from its high watermarks at once.
      this.every(frontfill.intervalSeconds * 1000, () => this.o.jobs.send(FRONTFILL_QUEUE, {}));
    }
    this.state = 'RUNNING';
  }

  /** Runs `fn` now and every `ms`; a failure is the source's problem until the next success. */
  private every(ms: number, fn: () => Promise<unknown>): void {
    const run = () =>
      void fn().then(
        () => {
          this.problem = undefined;
          if (this.state === 'DEGRADED') this.state = 'RUNNING';
        },
        (err: Error) => {
          if (this.stopping) return;
          this.problem = err.message;
          this.state = 'DEGRADED';
          log.warn({ err: err.message }, 'historian jobs could not be sent');
        },
      );
    run();
    const t = setInterval(run, ms);
    t.unref();
    this.timers.push(t);
  }

  /** Waiting jobs to the runner, highest priority first. */
  async sweep(): Promise<void> {
    if (!this.db || this.stopping) return;
    for (const j of await jobsToRun(this.db))
      await this.o.jobs.send(BACKFILL_QUEUE, { jobId: j.id }, { priority: j.priority, singletonKey: j.id });
  }

  /** Running jobs checkpoint and let go (the next worker resumes them); then the workers stop. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers.splice(0)) clearInterval(t);
    await this.o.jobs.offWork(BACKFILL_QUEUE);
    await this.o.jobs.offWork(FRONTFILL_QUEUE);
    this.state = 'STOPPED';
  }

  status(): SourceStatus {
    return {
      name: this.name,
      kind: this.kind,
      state: this.state,
      ready: this.state === 'RUNNING' || this.state === 'STARTING',
      ...(this.problem ? { problem: this.problem } : {}),
      counters: { ...this.counters },
    };
  }
}
