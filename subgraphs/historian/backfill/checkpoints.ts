import type { BackfillTaskStatus } from '../../../lib/db/types.ts';
import type { BatchOutcome } from '../../../lib/telemetry/types.ts';
import type { TaskDelta, TimeRange } from './backfill.repo.ts';

/**
 * What committed pages did since the last checkpoint, per tag, written every `intervalMs` and at the end by
 * `write` (one transaction): a checkpoint per page would cost a transaction per page. Only committed pages get
 * here, so a checkpoint never claims what is not stored; a crash between a commit and its checkpoint only makes
 * the next run read those pages again, which storage makes a no-op.
 */
export class Checkpoints<R> {
  private deltas = new Map<string, TaskDelta>();
  private timer?: NodeJS.Timeout;
  private writing: Promise<R | undefined> = Promise.resolve(undefined);

  constructor(
    private readonly write: (deltas: TaskDelta[]) => Promise<R>,
    private readonly intervalMs: number,
    private readonly onWritten: (result: R) => void = () => {},
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), this.intervalMs);
    this.timer.unref();
  }

  committed(tagMappingId: string, range: TimeRange | null, fetched: number, o: BatchOutcome): void {
    const d = this.delta(tagMappingId);
    d.fetched += fetched;
    d.imported += o.stored;
    d.duplicate += o.duplicate;
    d.rejected += o.rejected + o.deadLetters;
    if (!range) return;
    // Adjacent pages of one tag are one range: fewer rows for range_agg.
    const last = d.ranges.at(-1);
    if (last && last.to.getTime() === range.from.getTime()) last.to = range.to;
    else d.ranges.push({ ...range });
    if (!d.position || range.to > d.position) d.position = range.to;
  }

  ended(tagMappingId: string, status: BackfillTaskStatus, error: string | null): void {
    const d = this.delta(tagMappingId);
    d.status = status;
    d.error = error;
  }

  /** Writes what has gathered (one write at a time); resolves to what the write answered. */
  flush(): Promise<R | undefined> {
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        // Written even with nothing to add: the write renews the lease and answers whether a pause or cancel was
        // asked, which a slow historian call must not delay.
        const batch = [...this.deltas.values()];
        this.deltas = new Map();
        try {
          const r = await this.write(batch);
          this.onWritten(r);
          return r;
        } catch (err) {
          // Put back what was not written: it goes with the next checkpoint.
          for (const d of batch) this.merge(d);
          this.onError(err as Error);
          throw err;
        }
      });
    return this.writing;
  }

  /** The last checkpoint, then no more. */
  async stop(): Promise<R | undefined> {
    clearInterval(this.timer);
    await this.writing.catch(() => {});
    return this.flush();
  }

  private delta(tagMappingId: string): TaskDelta {
    let d = this.deltas.get(tagMappingId);
    if (!d) {
      d = { tagMappingId, fetched: 0, imported: 0, rejected: 0, duplicate: 0, ranges: [] };
      this.deltas.set(tagMappingId, d);
    }
    return d;
  }

  private merge(old: TaskDelta): void {
    const d = this.delta(old.tagMappingId);
    d.fetched += old.fetched;
    d.imported += old.imported;
    d.rejected += old.rejected;
    d.duplicate += old.duplicate;
    d.ranges.unshift(...old.ranges);
    if (old.position && (!d.position || old.position > d.position)) d.position = old.position;
    if (old.status && !d.status) {
      d.status = old.status;
      d.error = old.error;
    }
  }
}
