import type { BackfillJobRow } from '../../../lib/db/rows.ts';
import type { Db } from '../../../lib/db/index.ts';
import { jobById } from './backfill.repo.ts';

const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** Seconds since `since`, from `now`. */
const seconds = (now: number, since: Date | null) => (since ? Math.max(0.001, (now - since.getTime()) / 1000) : 0);

/** Values read per second in the job's current run; null when it is not running. */
export function pointsPerSecond(j: BackfillJobRow, now = Date.now()): number | null {
  if (j.status !== 'RUNNING' || !j.runStartedAt) return null;
  return Number(j.runFetched) / seconds(now, j.runStartedAt);
}

/** Seconds to go, from the share done and the time it took since the job first started; null without a rate. */
export function etaSeconds(j: BackfillJobRow, done: number, now = Date.now()): number | null {
  if (ENDED.has(j.status)) return 0;
  if (j.status !== 'RUNNING' || done <= 0 || !j.startedAt) return null;
  return (seconds(now, j.startedAt) * (1 - done)) / done;
}

/**
 * A job's row each time it changes (looked at every `intervalMs`), ending after the row that shows it ended (or
 * when the job is gone). Polling the row, not a channel: any instance may run the job, and one query a second per
 * watched job costs nothing beside a backfill.
 */
export async function* watchJob(db: Db, id: string, intervalMs = 1000): AsyncGenerator<BackfillJobRow> {
  let last = '';
  for (;;) {
    const j = await jobById(db, id);
    if (!j) return;
    const key = `${j.status}/${j.runFetched}/${j.leaseUntil?.getTime()}/${j.error}`;
    if (key !== last) {
      last = key;
      yield j;
    }
    if (ENDED.has(j.status)) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
