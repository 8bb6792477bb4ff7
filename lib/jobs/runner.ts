import { CompiledQuery } from 'kysely';
import { PgBoss, type Job, type QueuePolicy } from 'pg-boss';
import type { Db } from '../db/index.ts';
import { log } from '../log.ts';

/** How a queue treats its jobs: pg-boss's policy and retries (exponential backoff from retryDelaySeconds). */
export interface QueueSettings {
  /** `stately`: at most one job queued and one running (schedule syncs); `standard`: any number. */
  policy?: Extract<QueuePolicy, 'standard' | 'stately' | 'singleton' | 'short'>;
  retryLimit?: number;
  retryDelaySeconds?: number;
  /** How long a job may run before pg-boss counts it as failed (and retries it). Default 15 minutes. */
  expireInSeconds?: number;
}

/** What a handler learns of its job besides the data. */
export interface JobInfo {
  id: string;
  queue: string;
}

export type JobHandler<T> = (data: T, job: JobInfo) => Promise<unknown>;

export interface JobRunnerOptions {
  /** How often an idle worker looks for work (seconds, ≥ 0.5). */
  pollingIntervalSeconds?: number;
}

/**
 * The hub's one durable job runner: pg-boss on the hub's own Postgres (schema `pgboss`), through the hub's pool.
 * Jobs, schedules and retries are rows, so they survive restarts and any instance may run them; pg-boss's cron
 * worker makes sure only one instance sends each scheduled job. MES/ERP syncs use it; backfills and imports
 * will too. pg-boss is started on first use, so a process that runs no jobs never touches its schema.
 */
export class JobRunner {
  private boss: PgBoss | undefined;
  private starting: Promise<PgBoss> | undefined;
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly opts: JobRunnerOptions = {},
  ) {}

  /** Creates (or updates) a queue and runs `handler` for its jobs in this process, one at a time. */
  async work<T extends object>(queue: string, settings: QueueSettings, handler: JobHandler<T>): Promise<void> {
    const boss = await this.started();
    await this.ensureQueue(boss, queue, settings);
    await boss.work<T>(
      queue,
      { batchSize: 1, pollingIntervalSeconds: this.opts.pollingIntervalSeconds ?? 2 },
      async ([job]: Job<T>[]) => {
        if (job) await handler(job.data, { id: job.id, queue });
      },
    );
  }

  /** Sends `data` to `queue` on a cron schedule, kept in Postgres (a restart changes nothing). */
  async schedule(queue: string, cron: string, data: object, settings: QueueSettings = {}): Promise<void> {
    const boss = await this.started();
    await this.ensureQueue(boss, queue, settings);
    await boss.schedule(queue, cron, data, { singletonKey: queue, ...retries(settings) });
  }

  /** Drops the schedules whose queue `owns` but that are not in `keep` (lines no longer configured). */
  async unscheduleOthers(owns: (queue: string) => boolean, keep: ReadonlySet<string>): Promise<string[]> {
    const boss = await this.started();
    const dropped: string[] = [];
    for (const s of await boss.getSchedules()) {
      if (!owns(s.name) || keep.has(s.name)) continue;
      await boss.unschedule(s.name, s.key);
      dropped.push(s.name);
    }
    return dropped;
  }

  /**
   * Queues one job now; resolves to its id (null when the queue's policy refuses it: a stately queue already holds
   * one, a `short` one holds one with the same singletonKey). Higher priority runs first.
   */
  async send(
    queue: string,
    data: object,
    opts: { priority?: number; singletonKey?: string } = {},
  ): Promise<string | null> {
    return (await this.started()).send(queue, data, opts);
  }

  /** Stops this process's workers of `queue`, once the job they run has finished (others keep working). */
  async offWork(queue: string): Promise<void> {
    const boss = this.boss ?? (await this.starting?.catch(() => undefined));
    await boss?.offWork(queue, { wait: true });
  }

  /** Lets running jobs finish (up to 10 s), then stops polling. */
  async stop(): Promise<void> {
    this.stopped = true;
    const boss = this.boss ?? (await this.starting?.catch(() => undefined));
    await boss?.stop({ graceful: true, timeout: 10_000 });
  }

  private started(): Promise<PgBoss> {
    if (this.stopped) return Promise.reject(new Error('the job runner is stopped'));
    this.starting ??= this.startBoss();
    return this.starting;
  }

  private async startBoss(): Promise<PgBoss> {
    // pg-boss reads its own snake_case column names: the camel-case plugin must not touch them.
    const raw = this.db.withoutPlugins();
    const boss = new PgBoss({
      db: {
        executeSql: async (text: string, values: unknown[] = []) => ({
          rows: (await raw.executeQuery(CompiledQuery.raw(text, values))).rows as object[],
        }),
      },
      schema: 'pgboss',
    });
    boss.on('error', (err: Error) => log.error({ err: err.message }, 'job queue error'));
    await boss.start();
    this.boss = boss;
    return boss;
  }

  private async ensureQueue(boss: PgBoss, name: string, s: QueueSettings): Promise<void> {
    const options = { ...retries(s), ...(s.expireInSeconds ? { expireInSeconds: s.expireInSeconds } : {}) };
    if (await boss.getQueue(name)) await boss.updateQueue(name, options);
    else await boss.createQueue(name, { policy: s.policy ?? 'standard', ...options });
  }
}

const retries = (s: QueueSettings) => ({
  ...(s.retryLimit !== undefined ? { retryLimit: s.retryLimit } : {}),
  ...(s.retryDelaySeconds !== undefined ? { retryDelay: s.retryDelaySeconds, retryBackoff: true } : {}),
});

/** A queue name for a per-line queue (pg-boss names: letters, digits, _ - .). */
export const queueName = (prefix: string, key: string): string => `${prefix}.${key.replace(/[^\w.-]/g, '_')}`;
