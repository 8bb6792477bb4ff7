import { writeAuditSafe } from '../../../lib/audit.repo.ts';
import { errorCodeOf } from '../../../lib/errors.ts';
import type { MesConfig } from '../../../lib/config/mes.ts';
import { UpstreamError } from '../../../lib/connectors/errors.ts';
import { log } from '../../../lib/log.ts';
import { claimDueOutbound, finishOutbound, nextOutboundDue, type OutboundOutcome } from './outbox.repo.ts';
import type { Integrations } from './service.ts';
import type { OutboundUpdateRow } from './tables.ts';

const ACTOR = 'system:outbox';

/** Backoff before attempt n+1 after n transient failures: base·2ⁿ⁻¹, capped. There is no attempt limit. */
export function retryDelaySeconds(attempts: number, baseSeconds: number, maxSeconds: number): number {
  return Math.min(maxSeconds, baseSeconds * 2 ** Math.min(30, Math.max(0, attempts - 1)));
}

/**
 * How long a claim lasts: longer than the slowest call can take (every attempt of the connector's retry loop at
 * its deadline, plus the waits between them), with a margin. A claim older than that belongs to a dead sender.
 */
export function claimLeaseSeconds(mes: MesConfig): number {
  const c = mes.connection;
  return Math.ceil(c.timeoutSeconds * c.retry.maxAttempts + (c.retry.maxDelayMs * c.retry.maxAttempts) / 1000) + 30;
}

/**
 * A definitive refusal ends a report; anything else (timeouts, 5xx, refused connections, unreadable answers) may pass.
 */
export function outcomeOf(e: unknown, attempts: number, mes: MesConfig): OutboundOutcome {
  const message = (e as Error)?.message ?? String(e);
  if (e instanceof UpstreamError && e.rejected) return { state: 'REJECTED', error: message };
  return {
    state: 'PENDING',
    error: message,
    retryInSeconds: retryDelaySeconds(
      attempts,
      mes.sync.outboundRetryDelaySeconds,
      mes.sync.outboundRetryMaxDelaySeconds,
    ),
  };
}

/**
 * The outbox sender: claims a due report (short transaction), calls the MES with no transaction open, records the
 * outcome (another short transaction) and audits the attempt. `concurrency` loops share the work; several hub
 * instances may run senders on one database (claims keep them apart). It sleeps until the next report falls due
 * or `kick()` says there is a new one, and at least every `pollSeconds` (another instance may have queued one).
 */
export class OutboxSender {
  private stopped = false;
  private readonly sleepers = new Set<() => void>();
  private loops: Promise<void>[] = [];

  constructor(
    private readonly svc: Integrations,
    private readonly opts: { concurrency?: number; pollSeconds?: number } = {},
  ) {}

  start(): void {
    for (let i = 0; i < (this.opts.concurrency ?? 4); i++) this.loops.push(this.loop());
  }

  kick(): void {
    for (const wake of [...this.sleepers]) wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let worked = false;
      try {
        worked = await sendNextOutbound(this.svc);
      } catch (e) {
        // The database, not the MES (its failures are outcomes): wait a poll interval and try again.
        log.error({ err: e }, 'outbox sender failed');
      }
      if (!worked && !this.stopped) await this.sleep();
    }
  }

  private async sleep(): Promise<void> {
    const pollMs = (this.opts.pollSeconds ?? 5) * 1000;
    const due = await nextOutboundDue(this.svc.db).catch(() => null);
    const ms = due ? Math.max(50, Math.min(pollMs, due.getTime() - Date.now() + 20)) : pollMs;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}

/** Claims and sends one due report; false when none is due. Exported for tests that drive the outbox by hand. */
export async function sendNextOutbound(svc: Integrations): Promise<boolean> {
  const mes = svc.mesConfig!;
  const row = await claimDueOutbound(svc.db, claimLeaseSeconds(mes));
  if (!row) return false;
  let outcome: OutboundOutcome;
  let failure: unknown;
  try {
    // No transaction and no connection is held here: the call may take as long as the connector's retries do.
    const res = await svc.mes!.updateOrderStatus({
      idempotencyKey: row.idempotencyKey,
      workOrderNumber: row.workOrderNumber,
      lineId: row.lineId,
      status: row.status,
      actualQuantity: row.actualQuantity,
      actualStart: row.actualStart,
      actualEnd: row.actualEnd,
      reportedAt: row.createdAt,
    });
    outcome = { state: 'SENT', duplicate: res.duplicate };
  } catch (e) {
    failure = e;
    outcome = outcomeOf(e, row.attempts, mes);
  }
  const after = await finishOutbound(svc.db, row.id, row.claimToken!, outcome);
  await audit(svc, after ?? row, outcome, failure);
  return true;
}

function audit(svc: Integrations, row: OutboundUpdateRow, outcome: OutboundOutcome, failure: unknown) {
  return writeAuditSafe(
    svc.db,
    {
      actor: ACTOR,
      roles: [],
      service: 'production',
      operation: 'outbound.orderStatus',
      target: row.workOrderNumber,
      outcome: outcome.state === 'SENT' ? 'SUCCESS' : 'FAILURE',
      errorCode: failure ? errorCodeOf(failure) : null,
      details: {
        updateId: row.id,
        idempotencyKey: row.idempotencyKey,
        system: row.system,
        status: row.status,
        actualQuantity: row.actualQuantity,
        state: outcome.state,
        attempts: row.attempts,
        ...(outcome.state === 'SENT' ? { duplicate: outcome.duplicate } : { error: outcome.error }),
        ...(outcome.state === 'PENDING' ? { retryInSeconds: outcome.retryInSeconds } : {}),
      },
    },
    { updateId: row.id },
  );
}
