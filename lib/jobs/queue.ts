import { CompiledQuery } from 'kysely';
import PgBoss from 'pg-boss';
import type { Db } from '../db/index.ts';
import { log } from '../log.ts';

export type Queue = PgBoss;
export type { PgBoss };

/**
 * The hub's durable job queue: pg-boss 10 on the hub's own Postgres (schema `pgboss`), through the hub's pool
 * (without the camel-case plugin: pg-boss reads its own column names). Jobs, schedules and retries are rows,
 * so they survive restarts and any instance may run them; pg-boss's cron monitor makes sure only one instance
 * sends each scheduled job.
 */
export async function startQueue(db: Db, opts: { pollingIntervalSeconds?: number } = {}): Promise<PgBoss> {
  const raw = db.withoutPlugins();
  const boss = new PgBoss({
    db: {
      executeSql: async (text: string, values: unknown[] = []) => ({
        rows: (await raw.executeQuery(CompiledQuery.raw(text, values))).rows as any[],
      }),
    },
    schema: 'pgboss',
    // Completed jobs are kept a week for inspection, then archived and dropped by pg-boss's maintenance.
    archiveCompletedAfterSeconds: 7 * 86_400,
    ...(opts.pollingIntervalSeconds ? { pollingIntervalSeconds: opts.pollingIntervalSeconds } : {}),
  });
  boss.on('error', (err) => log.error({ err: err.message }, 'job queue error'));
  await boss.start();
  return boss;
}

/** A queue name for a per-line queue (pg-boss names: letters, digits, _ - .). */
export const queueName = (prefix: string, key: string) => `${prefix}.${key.replace(/[^\w.-]/g, '_')}`;
