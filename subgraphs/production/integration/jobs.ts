import { writeAudit } from '../../../lib/audit.repo.ts';
import { cronEvery } from '../../../lib/connectors/config.ts';
import { queueName, startQueue, type PgBoss } from '../../../lib/jobs/queue.ts';
import { log } from '../../../lib/log.ts';
import { unsentOutboundIds, withClaimedOutbound } from './integration.repo.ts';
import { SCHEDULER, type Integrations, type SystemKind } from './service.ts';

export const OUTBOUND_QUEUE = 'mes-order-status';
export const SCHEDULE_QUEUE = 'schedule-sync';
export const MATERIAL_QUEUE = 'erp-material-sync';
const OUTBOX: { sub: string } = { sub: 'system:outbox' };

export interface JobRunner {
  boss: PgBoss;
  stop(): Promise<void>;
}

/**
 * Durable work on pg-boss: per line, a cron schedule that syncs its production schedule (one queue per line,
 * `stately`: never two queued or two running; the sync's advisory lock also keeps a manual sync and a scheduled
 * one apart); the ERP material master on its own cadence; and the outbox of order status reports. A FAILED
 * scheduled sync throws, so pg-boss retries it with exponential backoff. Schedules live in Postgres, so a
 * restart changes nothing; lines no longer configured lose theirs.
 */
export async function startIntegrationJobs(svc: Integrations, opts: { pollingIntervalSeconds?: number } = {}): Promise<JobRunner> {
  const boss = await startQueue(svc.db);
  const polling = opts.pollingIntervalSeconds ?? 2;
  const ensureQueue = async (name: string, o: Omit<PgBoss.Queue, 'name'>) => {
    if (await boss.getQueue(name)) await boss.updateQueue(name, { name, ...o });
    else await boss.createQueue(name, { name, ...o });
  };

  // ---- order status reports
  const mes = svc.mesConfig;
  if (mes && svc.mes) {
    const retry = { retryLimit: mes.sync.outboundRetryLimit, retryDelay: mes.sync.outboundRetryDelaySeconds, retryBackoff: true };
    // `short`: at most one queued job per report, however often the sweep below runs.
    await ensureQueue(OUTBOUND_QUEUE, { policy: 'short', ...retry });
    svc.enqueueOutbound = async (id) => {
      await boss.send(OUTBOUND_QUEUE, { id }, { singletonKey: id, ...retry });
    };
    await boss.work<{ id: string }>(OUTBOUND_QUEUE, { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: polling }, async ([job]) => {
      if (!job) return;
      await sendOutbound(svc, job.data.id, job.retryCount >= job.retryLimit);
    });
    // Reports committed while no worker ran (or whose job was lost) get one now.
    for (const { id } of await unsentOutboundIds(svc.db)) await svc.enqueueOutbound(id);
  }

  // ---- scheduled syncs
  const wanted = new Map<string, { cron: string; data: object; retry: { retryLimit: number; retryDelay: number } }>();
  if (mes?.sync.autoSyncEnabled) {
    for (const line of mes.lines) {
      wanted.set(queueName(SCHEDULE_QUEUE, line), { cron: cronEvery(mes.sync.scheduleSyncIntervalMinutes), data: { lineId: line, system: 'MES' }, retry: { retryLimit: mes.sync.retryLimit, retryDelay: mes.sync.retryDelaySeconds } });
    }
  }
  const erp = svc.erpConfig;
  if (erp?.sync.autoSyncEnabled && svc.erp) {
    const retry = { retryLimit: erp.sync.retryLimit, retryDelay: erp.sync.retryDelaySeconds };
    for (const line of new Set(Object.values(erp.lineMap))) {
      const q = queueName(SCHEDULE_QUEUE, line);
      if (!wanted.has(q)) wanted.set(q, { cron: cronEvery(erp.sync.scheduleSyncIntervalMinutes), data: { lineId: line, system: 'ERP' }, retry });
    }
    // An ERP without a material master (Oracle's connector) gets no material schedule that could only fail.
    if (!svc.erp.unsupported?.has('materials')) wanted.set(MATERIAL_QUEUE, { cron: cronEvery(erp.sync.materialSyncIntervalMinutes), data: {}, retry });
  }
  for (const s of await boss.getSchedules()) {
    if ((s.name.startsWith(`${SCHEDULE_QUEUE}.`) || s.name === MATERIAL_QUEUE) && !wanted.has(s.name)) await boss.unschedule(s.name);
  }
  for (const [name, w] of wanted) {
    await ensureQueue(name, { policy: 'stately', ...w.retry, retryBackoff: true });
    await boss.schedule(name, w.cron, w.data, { singletonKey: name, ...w.retry, retryBackoff: true });
    await boss.work<{ lineId?: string; system?: SystemKind }>(name, { batchSize: 1, pollingIntervalSeconds: polling }, async ([job]) => {
      if (!job) return;
      await runScheduled(svc, name, job.data);
    });
  }
  log.info({ schedules: [...wanted.keys()], outbound: !!svc.enqueueOutbound }, 'integration jobs started');
  return {
    boss,
    stop: async () => {
      svc.enqueueOutbound = undefined;
      await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
    },
  };
}

/** One scheduled run; FAILED throws so pg-boss retries it (PARTIAL does not: the next run catches up). */
export async function runScheduled(svc: Integrations, name: string, data: { lineId?: string; system?: SystemKind }) {
  if (name === MATERIAL_QUEUE) {
    const run = await svc.syncMaterials({ trigger: 'SCHEDULED', actor: SCHEDULER });
    if (run.status === 'FAILED') throw new Error(`material sync ${run.id} failed`);
    return run;
  }
  const cfg = data.system === 'ERP' ? svc.erpConfig!.sync : svc.mesConfig!.sync;
  const now = Date.now();
  const run = await svc.syncSchedules({
    lineId: data.lineId!,
    system: data.system,
    from: new Date(now - cfg.lookBackHours * 3_600_000),
    to: new Date(now + cfg.horizonDays * 86_400_000),
    trigger: 'SCHEDULED',
    actor: SCHEDULER,
  });
  if (run?.status === 'FAILED') throw new Error(`schedule sync ${run.id} of ${data.lineId} failed`);
  return run;
}

/**
 * Sends one report. Success (or the MES saying it has this key already) → SENT. A failure stays PENDING with
 * its error and is thrown for pg-boss to retry; on the last attempt it becomes FAILED. Every attempt is audited.
 */
export async function sendOutbound(svc: Integrations, id: string, lastAttempt: boolean): Promise<void> {
  let failure: Error | undefined;
  const row = await withClaimedOutbound(svc.db, id, async (r) => {
    try {
      const res = await svc.mes!.updateOrderStatus({
        idempotencyKey: r.idempotencyKey,
        workOrderNumber: r.workOrderNumber,
        lineId: r.lineId,
        status: r.status,
        actualQuantity: r.actualQuantity,
        actualStart: r.actualStart,
        actualEnd: r.actualEnd,
        reportedAt: r.createdAt,
      });
      return { state: 'SENT', error: null, duplicate: res.duplicate };
    } catch (e) {
      failure = e as Error;
      return { state: lastAttempt ? 'FAILED' : 'PENDING', error: (e as Error).message };
    }
  });
  if (!row) return; // sent already, or another worker holds it
  await writeAudit(svc.db, {
    actor: OUTBOX.sub,
    roles: [],
    service: 'production',
    operation: 'outbound.orderStatus',
    target: row.workOrderNumber,
    outcome: row.state === 'SENT' ? 'SUCCESS' : 'FAILURE',
    errorCode: failure ? String((failure as { extensions?: { code?: string } }).extensions?.code ?? 'INTERNAL_SERVER_ERROR') : null,
    details: { updateId: row.id, idempotencyKey: row.idempotencyKey, system: row.system, status: row.status, actualQuantity: row.actualQuantity, state: row.state, attempts: row.attempts, duplicate: row.duplicate },
  }).catch((e) => log.error({ err: e, updateId: id }, 'audit write failed'));
  if (failure) throw failure;
}
