import { randomUUID } from 'node:crypto';
import { writeAudit } from '../../../lib/audit.repo.ts';
import type { HistorianFile } from '../../../lib/config/historian.ts';
import type { HistorianConnector } from '../../../lib/connectors/historian/types.ts';
import type { Db } from '../../../lib/db/index.ts';
import type { BackfillStatus } from '../../../lib/db/types.ts';
import { log } from '../../../lib/log.ts';
import type { TelemetrySink } from '../../../lib/telemetry/types.ts';
import * as repo from './backfill.repo.ts';
import { Checkpoints } from './checkpoints.ts';
import { fetchAll, type FetchTask, mappedTag } from './fetch.ts';

export interface RunDeps {
  db: Db;
  sink: TelemetrySink;
  connectors: ReadonlyMap<string, HistorianConnector>;
  settings: HistorianFile['backfill'];
  /** This process among the workers (host and pid): a job's lease names it. */
  worker: string;
  /** Counts for the source's status. */
  counters: Record<string, number>;
  /** True once the process is stopping: the run checkpoints and lets the job go for the next worker. */
  stopping: () => boolean;
}

/**
 * One run of a backfill job, as the job runner calls it: claim the job (a lease, renewed at every checkpoint), read
 * what its tags still miss of its range (the range minus each tag's watermark: a resumed job reads only that),
 * hand the pages to the pipeline, checkpoint, and end as COMPLETED, FAILED (a tag or the historian failed),
 * PAUSED or CANCELLED (asked meanwhile). A process killed mid-run leaves the job RUNNING under a lease that runs
 * out; any worker's sweep then sends it again and the next run resumes from the watermarks.
 */
export async function runBackfill(deps: RunDeps, jobId: string): Promise<void> {
  // One name per run, not per process: a run still finishing after a pause and resume must not pass for the run
  // that took the job over in the same process (its checkpoints and end would then count as the new run's).
  const d = { ...deps, worker: `${deps.worker}#${randomUUID().slice(0, 8)}` };
  const leaseMs = d.settings.leaseSeconds * 1000;
  const job = await repo.claimJob(d.db, jobId, d.worker, leaseMs);
  if (!job) return; // another worker runs it, or it was paused, cancelled or finished meanwhile
  const connector = d.connectors.get(job.historian);
  if (!connector) {
    await finish(d, job, 'FAILED', `historian "${job.historian}" is not configured in historian.yml here`);
    return;
  }
  d.counters.jobsRun = (d.counters.jobsRun ?? 0) + 1;
  let asked: BackfillStatus | undefined;
  const cp = new Checkpoints<BackfillStatus | undefined>(
    (deltas) => repo.checkpoint(d.db, { id: job.id, worker: d.worker, leaseMs }, deltas),
    d.settings.checkpointMs,
    (status) => {
      // Lost the lease (undefined) or asked to pause or cancel: stop reading.
      if (status !== 'RUNNING') asked = status ?? 'RUNNING';
    },
    (err) => log.warn({ err: err.message, job: job.id }, 'backfill checkpoint not written; retried with the next'),
  );
  const failed: string[] = [];
  const tasks: FetchTask[] = [];
  for (const t of await repo.openTasks(d.db, job.id)) {
    if (!t.ref) {
      failed.push(t.tag);
      cp.ended(t.tagMappingId, 'FAILED', `the mapping of ${t.tag} has no handle on ${job.historian}: map it again`);
      continue;
    }
    tasks.push({ tagMappingId: t.tagMappingId, tag: mappedTag({ ...t, ref: t.ref }), ranges: t.missing });
  }
  cp.start();
  let error: string | null = null;
  try {
    await fetchAll({ connector, sink: d.sink, maxTagAttempts: d.settings.maxTagAttempts }, tasks, {
      committed: (task, range, fetched, outcome) => {
        d.counters.pointsFetched = (d.counters.pointsFetched ?? 0) + fetched;
        cp.committed(task.tagMappingId, range, fetched, outcome);
      },
      tagDone: (task, err) => {
        if (err) failed.push(task.tag.tag);
        cp.ended(task.tagMappingId, err ? 'FAILED' : 'COMPLETED', err ?? null);
      },
      stop: () => asked !== undefined || d.stopping(),
    });
  } catch (err) {
    error = (err as Error).message;
  }
  const last = await cp.stop().catch((err: Error) => {
    error ??= `progress could not be saved: ${err.message}`;
    return undefined;
  });
  if (last !== 'RUNNING' && last !== undefined) asked = last;
  if (asked === 'RUNNING') return; // the lease is another worker's now: it carries on from the watermarks
  if (asked === undefined && d.stopping()) return repo.releaseLease(d.db, job.id, d.worker).then(() => undefined);
  if (asked === 'PAUSED' || asked === 'CANCELLED') return finish(d, job, asked, null);
  // Anything else was asked meanwhile (paused and resumed before this run saw the pause: PENDING): the job is the
  // next run's, which resumes it from the watermarks.
  if (asked !== undefined) return repo.releaseLease(d.db, job.id, d.worker).then(() => undefined);
  if (error) return finish(d, job, 'FAILED', error);
  if (failed.length)
    return finish(
      d,
      job,
      'FAILED',
      `${failed.length} of the job's tags failed (${failed.slice(0, 3).join(', ')}…): ` +
        'retry them with retryBackfillTag',
    );
  return finish(d, job, 'COMPLETED', null);
}

/** The job's end state, and its audit entry with the counts. */
async function finish(
  d: RunDeps,
  job: { id: string; historian: string; createdBy: string | null },
  status: BackfillStatus,
  error: string | null,
): Promise<void> {
  // A tag retried while this run read the others is still open: the job runs again (the sweep sends it) instead.
  if ((status === 'COMPLETED' || status === 'FAILED') && (await repo.openTaskCount(d.db, job.id)) > 0) {
    await repo.endRun(d.db, job.id, d.worker, 'PENDING', null);
    return;
  }
  // The end and its audit entry in one transaction: a process killed between the two cannot leave one alone.
  await repo.endRun(d.db, job.id, d.worker, status, error, async (trx) => {
    const counts = await repo.jobProgress(trx, job.id);
    await writeAudit(trx, {
      actor: job.createdBy ?? 'system',
      roles: [],
      service: 'historian',
      operation: `backfill.${status.toLowerCase()}`,
      target: job.id,
      outcome: status === 'FAILED' ? 'FAILURE' : 'SUCCESS',
      errorCode: status === 'FAILED' ? 'BACKFILL_FAILED' : null,
      details: { historian: job.historian, ...counts, error },
    });
    log.info({ job: job.id, status, error, ...counts }, 'backfill run ended');
  });
}
