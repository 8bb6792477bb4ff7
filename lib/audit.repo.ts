import type { Db } from './db/index.ts';
import { log } from './log.ts';
import { afterCursor, encodeCursor, readPage, toConnection, type PageArgs } from './pagination.ts';

export interface AuditEntry {
  actor: string;
  roles: string[];
  service: string;
  operation: string;
  target?: string | null;
  outcome: 'SUCCESS' | 'FAILURE';
  errorCode?: string | null;
  details?: Record<string, unknown>;
  requestId?: string | null;
}

export async function writeAudit(db: Db, e: AuditEntry): Promise<void> {
  await db
    .insertInto('audit.log')
    .values({
      ...e,
      target: e.target ?? null,
      errorCode: e.errorCode ?? null,
      requestId: e.requestId ?? null,
      details: JSON.stringify(e.details ?? {}),
    })
    .execute();
}

/**
 * Writes an audit entry after the change it records is committed: a failed write is logged loudly (with `logFields`)
 * rather than failing the change.
 */
export async function writeAuditSafe(db: Db, e: AuditEntry, logFields: Record<string, unknown>): Promise<void> {
  try {
    await writeAudit(db, e);
  } catch (err) {
    log.error({ err, ...logFields }, 'audit write failed');
  }
}

export interface AuditFilter {
  actor?: string | null;
  operation?: string | null;
  outcome?: 'SUCCESS' | 'FAILURE' | null;
  from?: Date | null;
  to?: Date | null;
}

export async function listAudit(db: Db, filter: AuditFilter, args: PageArgs) {
  const page = readPage(args);
  let q = db.selectFrom('audit.log').selectAll();
  if (filter.actor) q = q.where('actor', '=', filter.actor);
  if (filter.operation) q = q.where('operation', '=', filter.operation);
  if (filter.outcome) q = q.where('outcome', '=', filter.outcome);
  if (filter.from) q = q.where('at', '>=', filter.from);
  if (filter.to) q = q.where('at', '<', filter.to);
  const count = () =>
    q
      .clearSelect()
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow()
      .then((r) => Number(r.n));
  let pq = q;
  if (page.after)
    pq = pq.where(afterCursor({ ...page, after: [Number(page.after[0]), Number(page.after[1])] }, 'id', 'id', true));
  const rows = await pq
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .execute();
  return toConnection(rows, page, (r) => encodeCursor(r.id, r.id), count);
}
