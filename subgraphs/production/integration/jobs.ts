import { cronEvery } from '../../../lib/connectors/config.ts';
import { queueName, startQueue, type PgBoss } from '../../../lib/jobs/queue.ts';
import { log } from '../../../lib/log.ts';
import { OutboxSender } from './outbox.ts';
import { SCHEDULER, type Integrations, type SystemKind } from './service.ts';

export const SCHEDULE_QUEUE = 'schedule-sync';
export const MATERIAL_QUEUE = 'erp-material-sync';

export interface JobRunner {
  boss: PgBoss;
  stop(): Promise<void>;
}

/**
 * Durable work on pg-boss: per line, a cron schedule that syncs its production schedule (one queue per line,
 * `stately`: never two queued or two running; the sync's advisory lock also keeps a manual sync and a scheduled
 * one apart); the ERP material master on its own cadence; and the outbox sender of order status reports
 * (outbox.ts: the outbox table is its own queue). A FAILED
 * scheduled sync throws, so pg-boss retries it with exponential backoff. Schedules live in Postgres, so a
 * restart changes nothing; lines no longer configured lose theirs.
 */
export async function startIntegrationJobs(
  svc: Integrations,
  opts: { pollingIntervalSeconds?: number } = {},
): Promise<JobRunner> {
  const boss = await startQueue(svc.db);
  const polling = opts.pollingIntervalSeconds ?? 2;
  const ensureQueue = async (name: string, o: Omit<PgBoss.Queue, 'name'>) => {
    if (await boss.getQueue(name)) await boss.updateQueue(name, { name, ...o });
    else await boss.createQueue(name, { name, ...o });
  };

  // ---- order status reports: the outbox table is their queue (claims, backoff); the sender starts with the
  // reports already due, PENDING ones left by a stopped or crashed instance (expired claims) included.
  const mes = svc.mesConfig;
  let outbox: OutboxSender | undefined;
  if (mes && svc.mes) {
    outbox = new OutboxSender(svc, { pollSeconds: polling });
    svc.kickOutbound = () => outbox!.kick();
    outbox.start();
  }

  // ---- scheduled syncs
  const wanted = new Map<string, { cron: string; data: object; retry: { retryLimit: number; retryDelay: number } }>();
  if (mes?.sync.autoSyncEnabled) {
    for (const line of mes.lines) {
      wanted.set(queueName(SCHEDULE_QUEUE, line), {
        cron: cronEvery(mes.sync.scheduleSyncIntervalMinutes),
        data: { lineId: line, system: 'MES' },
        retry: { retryLimit: mes.sync.retryLimit, retryDelay: mes.sync.retryDelaySeconds },
      });
    }
  }
  const erp = svc.erpConfig;
  if (erp?.sync.autoSyncEnabled && svc.erp) {
    const retry = { retryLimit: erp.sync.retryLimit, retryDelay: erp.sync.retryDelaySeconds };
    for (const line of new Set(Object.values(erp.lineMap))) {
      const q = queueName(SCHEDULE_QUEUE, line);
      if (!wanted.has(q))
        wanted.set(q, {
          cron: cronEvery(erp.sync.scheduleSyncIntervalMinutes),
          data: { lineId: line, system: 'ERP' },
          retry,
        });
    }
    // An ERP without a material master (Oracle's connector) gets no material schedule that could only fail.
    if (!svc.erp.unsupported?.has('materials'))
      wanted.set(MATERIAL_QUEUE, { cron: cronEvery(erp.sync.materialSyncIntervalMinutes), data: {}, retry });
  }
  for (const s of await boss.getSchedules()) {
    if ((s.name.startsWith(`${SCHEDULE_QUEUE}.`) || s.name === MATERIAL_QUEUE) && !wanted.has(s.name))
      await boss.unschedule(s.name);
  }
  for (const [name, w] of wanted) {
    await ensureQueue(name, { policy: 'stately', ...w.retry, retryBackoff: true });
    await boss.schedule(name, w.cron, w.data, { singletonKey: name, ...w.retry, retryBackoff: true });
    await boss.work<{ lineId?: string; system?: SystemKind }>(
      name,
      { batchSize: 1, pollingIntervalSeconds: polling },
      async ([job]) => {
        if (!job) return;
        await runScheduled(svc, name, job.data);
      },
    );
  }
  log.info({ schedules: [...wanted.keys()], outbound: !!outbox }, 'integration jobs started');
  return {
    boss,
    stop: async () => {
      svc.kickOutbound = undefined;
      await outbox?.stop();
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
