import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import { idb, type OutboundState, type OutboundUpdateRow } from './tables.ts';

/** The outbox of order status reports to the MES: recorded with the change, then claimed, sent and finished. */

export interface NewOutbound {
  idempotencyKey: string;
  system: string;
  workOrderId: string;
  workOrderNumber: string;
  lineId: string;
  status: 'PLANNED' | 'ACTIVE' | 'COMPLETED' | 'CANCELLED';
  actualQuantity: number;
  actualStart: Date | null;
  actualEnd: Date | null;
  requestedBy: string;
}

/** The fields of a report a caller chose; a replay of its key must carry the same ones. */
export type StatusRequestMatch = (existing: OutboundUpdateRow) => boolean;

/**
 * The local change and its report to the MES commit together: the report can never be lost, nor sent for a
 * change that rolled back. The key is checked first, under a transaction-scoped lock on it, so a reused key
 * changes nothing: the same request again is a replay (the existing report, no write); anything else
 * (another order, other values) is a conflict, returned before the work order is touched.
 */
export async function recordStatusChange(
  db: Db,
  u: NewOutbound,
  sameRequest: StatusRequestMatch,
): Promise<{ kind: 'created' | 'replay'; row: OutboundUpdateRow } | { kind: 'conflict'; row: OutboundUpdateRow }> {
  return db.transaction().execute(async (tx) => {
    // Two concurrent first uses of one key wait for each other here; the second then sees the first's report.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`outbound-key:${u.idempotencyKey}`}, 0))`.execute(tx);
    const t = idb(tx as unknown as Db);
    const existing = await t
      .selectFrom('production.outboundUpdates')
      .selectAll()
      .where('idempotencyKey', '=', u.idempotencyKey)
      .executeTakeFirst();
    if (existing) return { kind: sameRequest(existing) ? ('replay' as const) : ('conflict' as const), row: existing };
    await tx
      .updateTable('production.workOrders')
      .set({
        status: u.status,
        actualQuantity: u.actualQuantity,
        actualStart: u.actualStart,
        actualEnd: u.actualEnd,
        updatedAt: new Date(),
      })
      .where('id', '=', u.workOrderId)
      .execute();
    const row = await t.insertInto('production.outboundUpdates').values(u).returningAll().executeTakeFirstOrThrow();
    return { kind: 'created' as const, row };
  });
}

export const outboundById = (db: Db, id: string) =>
  idb(db).selectFrom('production.outboundUpdates').selectAll().where('id', '=', id).executeTakeFirst();

/**
 * Claims the next due report for `leaseSeconds` in one statement (its own short transaction): attempts + 1, a
 * fresh claim token. Nothing stays locked while the MES is called; a claim whose sender died expires and the
 * report is due again. A report waits while an earlier PENDING report of the same work order exists, so the MES
 * sees one order's changes in the order they were made.
 */
export async function claimDueOutbound(db: Db, leaseSeconds: number): Promise<OutboundUpdateRow | undefined> {
  const { rows } = await sql<OutboundUpdateRow>`
    update production.outbound_updates o
    set claimed_until = now() + make_interval(secs => ${leaseSeconds}), claim_token = gen_random_uuid(),
        attempts = o.attempts + 1, last_attempt_at = now(),
        -- Until the outcome is recorded, the next attempt is when this claim lapses (a sender that died mid-call);
        -- so nextAttemptAt is never earlier than lastAttemptAt, even read while an attempt is in flight.
        next_attempt_at = now() + make_interval(secs => ${leaseSeconds})
    where o.id = (
      select c.id from production.outbound_updates c
      where c.state = 'PENDING' and c.next_attempt_at <= now() and (c.claimed_until is null or c.claimed_until < now())
        and not exists (
          select 1 from production.outbound_updates e
          where e.work_order_id = c.work_order_id and e.state = 'PENDING'
            and (e.created_at, e.id) < (c.created_at, c.id))
      order by c.next_attempt_at, c.created_at
      limit 1
      for update skip locked)
    returning o.*`.execute(db);
  return rows[0];
}

export type OutboundOutcome =
  | { state: 'SENT'; duplicate: boolean }
  | { state: 'PENDING'; error: string; retryInSeconds: number }
  | { state: 'REJECTED'; error: string };

/**
 * Records how a claimed attempt ended (a second short transaction). Acceptance always counts (the MES has the
 * report, whoever sent it); a failure counts only while the claim is still this sender's, so a sender whose lease
 * ran out cannot undo what a later attempt recorded. Undefined: the claim was no longer ours.
 */
export const finishOutbound = (db: Db, id: string, claimToken: string, o: OutboundOutcome) => {
  let q = idb(db)
    .updateTable('production.outboundUpdates')
    .set({
      claimedUntil: null,
      claimToken: null,
      ...(o.state === 'SENT'
        ? { state: 'SENT', duplicate: o.duplicate, sentAt: new Date(), lastError: null }
        : o.state === 'REJECTED'
          ? { state: 'REJECTED', lastError: o.error, rejectedAt: new Date() }
          : { lastError: o.error, nextAttemptAt: sql<Date>`now() + make_interval(secs => ${o.retryInSeconds})` }),
    })
    .where('id', '=', id)
    .where('state', '=', 'PENDING');
  if (o.state !== 'SENT') q = q.where('claimToken', '=', claimToken);
  return q.returningAll().executeTakeFirst();
};

/** A REJECTED report back to PENDING, due now (an engineer fixed the cause). Undefined when it is not REJECTED. */
export const requeueRejected = (db: Db, id: string) =>
  idb(db)
    .updateTable('production.outboundUpdates')
    .set({ state: 'PENDING', nextAttemptAt: new Date(), rejectedAt: null, claimedUntil: null, claimToken: null })
    .where('id', '=', id)
    .where('state', '=', 'REJECTED')
    .returningAll()
    .executeTakeFirst();

/** When the next PENDING report falls due (null: none), so an idle sender sleeps until then. */
export async function nextOutboundDue(db: Db): Promise<Date | null> {
  const r = await idb(db)
    .selectFrom('production.outboundUpdates')
    .select((eb) => eb.fn.min(sql<Date>`greatest(next_attempt_at, coalesce(claimed_until, next_attempt_at))`).as('due'))
    .where('state', '=', 'PENDING')
    .executeTakeFirst();
  return r?.due ? new Date(r.due) : null;
}

export function listOutbound(
  db: Db,
  f: { state?: OutboundState[] | null; workOrderId?: string | null },
  scope: ScopeFilter,
  page: PageArgs,
) {
  let q = idb(db).selectFrom('production.outboundUpdates').selectAll();
  if (f.state?.length) q = q.where('state', 'in', f.state);
  if (f.workOrderId) q = q.where('workOrderId', '=', f.workOrderId);
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'createdAt', idCol: 'id', desc: true });
}
