import { createErpConnector, createMesConnector } from '../../../lib/connectors/index.ts';
import { log } from '../../../lib/log.ts';
import type { ServiceDeps, Services } from '../../../lib/subgraph/module.ts';
import { startIntegrationJobs } from './jobs.ts';
import { Integrations } from './service.ts';

/** What production's resolvers reach as ctx.services. */
export interface ProductionServices {
  /** The MES/ERP service: a subgraph without mes.yml or erp.yml still answers the history and outbox queries. */
  integrations: Integrations;
}

/**
 * The connectors mes.yml and erp.yml configure, the service over them and, when there is anything to run and this
 * process runs jobs, the scheduled syncs and the outbox sender on the job runner.
 */
export function productionServices({ db, settings, jobs }: ServiceDeps): Services<ProductionServices> {
  const mes = settings.mes ? createMesConnector(settings.mes) : undefined;
  const erp = settings.erp ? createErpConnector(settings.erp) : undefined;
  const integrations = new Integrations(db, settings.mes, settings.erp, mes, erp);
  let stopJobs: (() => Promise<void>) | undefined;
  return {
    value: { integrations },
    async start() {
      if (!mes && !erp) return;
      if (jobs) stopJobs = await startIntegrationJobs(integrations, jobs, settings.hub.jobs);
      log.info({ mes: mes?.system, erp: erp?.system, jobs: !!jobs }, 'MES/ERP integration ready');
    },
    async stop() {
      await stopJobs?.();
      await integrations.close();
    },
  };
}
