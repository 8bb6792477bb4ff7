import { writeAuditSafe } from '../../../lib/audit.repo.ts';
import { errorCodeOf } from '../../../lib/errors.ts';
import type { Db } from '../../../lib/db/index.ts';
import { log } from '../../../lib/log.ts';
import type { RecordError } from '../../../lib/connectors/mes/types.ts';
import { finishSyncRun, insertSyncRun } from './sync-runs.repo.ts';
import type { SyncKind, SyncRunRow, SystemKind } from './tables.ts';

const MAX_STORED_ERRORS = 100;

export interface SyncMeta {
  system: string;
  systemKind: SystemKind;
  kind: SyncKind;
  lineId: string | null;
  workOrderId?: string | null;
  rangeFrom?: Date | null;
  rangeTo?: Date | null;
  trigger: 'MANUAL' | 'SCHEDULED';
  actor: string;
  requestId?: string | null;
}

/** What a sync body reports as it goes. */
export class SyncTally {
  fetched = 0;
  created = 0;
  updated = 0;
  rejected = 0;
  errors: { key: string | null; message: string }[] = [];
  errorCount = 0;
  /**
   * The read stopped early (an upstream failure after retries): what was read is kept, the run is PARTIAL or FAILED.
   */
  aborted = false;

  /** Counts what one upsert wrote. */
  add(c: { created: number; updated: number }) {
    this.created += c.created;
    this.updated += c.updated;
  }

  recordErrors(errs: RecordError[]) {
    this.rejected += errs.length;
    for (const e of errs) this.error(e.key, e.message);
  }

  error(key: string | null, message: string) {
    this.errorCount++;
    if (this.errors.length < MAX_STORED_ERRORS) this.errors.push({ key, message });
  }
}

/**
 * One sync run, recorded: a RUNNING history row first, then the counts, SUCCESS / PARTIAL / FAILED, the errors
 * and the duration, and an audit entry (every sync is audited, scheduled ones as `system:scheduler`).
 * An upstream failure inside `body` does not escape: it is the run's outcome.
 */
export async function recordSync(db: Db, meta: SyncMeta, body: (t: SyncTally) => Promise<void>): Promise<SyncRunRow> {
  const started = performance.now();
  const run = await insertSyncRun(db, {
    system: meta.system,
    systemKind: meta.systemKind,
    kind: meta.kind,
    lineId: meta.lineId,
    workOrderId: meta.workOrderId,
    rangeFrom: meta.rangeFrom,
    rangeTo: meta.rangeTo,
    trigger: meta.trigger,
    requestedBy: meta.actor,
  });
  const t = new SyncTally();
  let errorCode: string | null = null;
  try {
    await body(t);
  } catch (e) {
    t.aborted = true;
    errorCode = errorCodeOf(e);
    t.error(null, errorCode === 'INTERNAL_SERVER_ERROR' ? 'unexpected error (see the hub log)' : (e as Error).message);
    if (errorCode === 'INTERNAL_SERVER_ERROR')
      log.error({ err: e, runId: run.id, kind: meta.kind }, 'sync failed unexpectedly');
  }
  const status = t.aborted ? (t.fetched === 0 ? 'FAILED' : 'PARTIAL') : t.errorCount > 0 ? 'PARTIAL' : 'SUCCESS';
  const unchanged = Math.max(0, t.fetched - t.rejected - t.created - t.updated);
  const row = await finishSyncRun(db, run.id, {
    status,
    fetched: t.fetched,
    created: t.created,
    updated: t.updated,
    unchanged,
    rejected: t.rejected,
    errors: t.errors,
    errorCount: t.errorCount,
    durationMs: Math.round(performance.now() - started),
  });
  await writeAuditSafe(
    db,
    {
      actor: meta.actor,
      roles: [],
      service: 'production',
      operation: `sync.${meta.kind.toLowerCase()}`,
      target: meta.lineId ?? meta.workOrderId ?? meta.system,
      outcome: status === 'FAILED' ? 'FAILURE' : 'SUCCESS',
      errorCode,
      details: {
        runId: row.id,
        system: meta.system,
        trigger: meta.trigger,
        status,
        fetched: t.fetched,
        created: t.created,
        updated: t.updated,
        unchanged,
        rejected: t.rejected,
      },
      requestId: meta.requestId ?? null,
    },
    { runId: row.id },
  );
  log.info(
    {
      runId: row.id,
      system: meta.system,
      kind: meta.kind,
      line: meta.lineId,
      status,
      fetched: t.fetched,
      created: t.created,
      updated: t.updated,
      ms: row.durationMs,
    },
    'sync finished',
  );
  return row;
}
