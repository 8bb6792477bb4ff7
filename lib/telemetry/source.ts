import type { Db } from '../db/index.ts';
import type { Logger } from '../log.ts';
import type { SourceName } from './sources.ts';
import type { SourceBatch, TelemetrySink } from './types.ts';

export type SourceState = 'STARTING' | 'RUNNING' | 'DEGRADED' | 'STOPPED';

/** What a source says of itself: for /readyz, the telemetrySources query and the logs. */
export interface SourceStatus {
  /** The source's name: `mqtt`, `sparkplug`, `http`, or a backfill's or an import's own. */
  name: string;
  kind: SourceName;
  state: SourceState;
  /** False when data cannot come in (broker offline, acknowledgements stalled): the ingest is then not ready. */
  ready: boolean;
  /** One sentence on what is wrong, when something is. */
  problem?: string;
  /** The source's own counts (messages received and acknowledged, polls, rows read...). */
  counters: Record<string, number>;
}

/** What a source may use besides the pipeline. */
export interface SourceContext {
  db: Db;
  log: Logger;
  /** This process's name among the ingest workers (host name by default), for status rows. */
  worker: string;
}

/**
 * One source of readings: MQTT JSON topics, the Sparkplug host, HTTP polling; historian backfills and file imports
 * next. A source turns its input into SourceBatches and hands them to the one pipeline (the sink); it never writes
 * readings itself, and it acknowledges its input only in a batch's `ack`, which the pipeline calls after commit.
 *
 * `stop` takes nothing new, waits (bounded) for the batches it handed over to be committed and acknowledged, then
 * lets its connections go: what was not acknowledged comes again on the next start.
 */
export interface TelemetrySource {
  readonly name: string;
  readonly kind: SourceName;
  start(sink: TelemetrySink, ctx: SourceContext): Promise<void>;
  stop(): Promise<void>;
  status(): SourceStatus;
}

/**
 * A source's batches between submit and ack/fail, so stop() can wait for them. Every source needs this, and a
 * counter kept by hand in each is easy to get wrong on the fail path.
 */
export class InPipeline {
  private pending = 0;
  private waiters: (() => void)[] = [];

  /** The batch, with ack and fail wrapped so the count goes down exactly once. */
  track(batch: SourceBatch): SourceBatch {
    this.pending++;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      if (--this.pending === 0) for (const w of this.waiters.splice(0)) w();
    };
    return {
      ...batch,
      // The source's own ack (a PUBACK) goes out before stop() may close its connection.
      ack: (outcome) => {
        try {
          batch.ack(outcome);
        } finally {
          settle();
        }
      },
      fail: (err) => {
        try {
          batch.fail?.(err);
        } finally {
          settle();
        }
      },
    };
  }

  get size(): number {
    return this.pending;
  }

  /** Resolves when nothing is pending, or after `timeoutMs` (the rest is redelivered: nothing is lost). */
  drained(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
