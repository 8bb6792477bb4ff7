import { cronEvery } from '../../../lib/config/connection.ts';
import { queueName, type JobRunner, type QueueSettings } from '../../../lib/jobs/runner.ts';
import { log } from '../../../lib/log.ts';
import { OutboxSender } from './outbox.ts';
import { SCHEDULER, type Integrations, type SystemKind } from './service.ts';

export const SCHEDULE_QUEUE = 'schedule-sync';
export const MATERIAL_QUEUE = 'erp-material-sync';

interface Wanted {
  cron: string;
  data: { lineId?: string; system?: SystemKind };
  settings: QueueSettings;
}

/**
 * Durable work on the hub's job runner: per line, a cron schedule that syncs its production schedule (one queue
 * per line, `stately`: never two queued or two running; the sync's advisory lock also keeps a manual sync and a
 * scheduled one apart); the ERP material master on its own cadence; and the outbox sender of order status
 * reports (outbox.ts: the outbox table is its own queue). A FAILED scheduled sync throws, so the runner retries
 * it with exponential backoff. Schedules live in Postgres, so a restart changes nothing; lines no longer
 * configured lose theirs. Resolves to a function that stops what it started here (the runner is the caller's).
 */
export async function startIntegrationJobs(
  svc: Integrations,
  jobs: JobRunner,
  opts: { pollingIntervalSeconds?: number } = {},
): Promise<() => Promise<void>> {
  // ---- order status reports: the outbox table is their queue (claims, backoff); the sender starts with the
  // reports already due, PENDING ones left by a stopped or crashed instance (expired claims) included.
  const mes = svc.mesConfig;
  let outbox: OutboxSender | undefined;
  if (mes && svc.mes) {
    const sender = new OutboxSender(svc, { pollSeconds: opts.pollingIntervalSeconds ?? 2 });
    svc.kickOutbound = () => sender.kick();
    sender.start();
    outbox = sender;
  }

  const wanted = wantedSchedules(svc);
  await jobs.unscheduleOthers(
    (q) => q.startsWith(`${SCHEDULE_QUEUE}.`) || q === MATERIAL_QUEUE,
    new Set(wanted.keys()),
  );
  for (const [name, w] of wanted) {
    await jobs.schedule(name, w.cron, w.data, w.settings);
    await jobs.work<Wanted['data']>(name, w.settings, (data) => runScheduled(svc, name, data));
  }
  log.info({ schedules: [...wanted.keys()], outbound: !!outbox }, 'integration jobs started');
  return async () => {
    svc.kickOutbound = undefined;
    // The workers stop (their running syncs finish) before the caller closes the connectors they use.
    for (const name of wanted.keys()) await jobs.offWork(name);
    await outbox?.stop();
  };
}

/** The schedules mes.yml and erp.yml ask for, by queue name. The MES serves a line before the ERP does. */
function wantedSchedules(svc: Integrations): Map<string, Wanted> {
  const wanted = new Map<string, Wanted>();
  const mes = svc.mesConfig;
  if (mes?.sync.autoSyncEnabled) {
    const settings: QueueSettings = {
      policy: 'stately',
      retryLimit: mes.sync.retryLimit,
      retryDelaySeconds: mes.sync.retryDelaySeconds,
    };
    for (const line of mes.lines) {
      const cron = cronEvery(mes.sync.scheduleSyncIntervalMinutes);
      wanted.set(queueName(SCHEDULE_QUEUE, line), { cron, data: { lineId: line, system: 'MES' }, settings });
    }
  }
  const erp = svc.erpConfig;
  if (erp?.sync.autoSyncEnabled && svc.erp) {
    const settings: QueueSettings = {
      policy: 'stately',
      retryLimit: erp.sync.retryLimit,
      retryDelaySeconds: erp.sync.retryDelaySeconds,
    };
    for (const line of new Set(Object.values(erp.lineMap))) {
      const q = queueName(SCHEDULE_QUEUE, line);
      const cron = cronEvery(erp.sync.scheduleSyncIntervalMinutes);
      if (!wanted.has(q)) wanted.set(q, { cron, data: { lineId: line, system: 'ERP' }, settings });
    }
    // An ERP without a material master (Oracle's connector) gets no material schedule that could only fail.
    if (!svc.erp.unsupported?.has('materials')) {
      wanted.set(MATERIAL_QUEUE, { cron: cronEvery(erp.sync.materialSyncIntervalMinutes), data: {}, settings });
    }
  }
  return wanted;
}

/** One scheduled run; FAILED throws so the runner retries it (PARTIAL does not: the next run catches up). */
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
