import type { Db } from '../../../lib/db/index.ts';
import { loadErpConfig, type ErpConfig } from '../../../lib/config/erp.ts';
import { loadMesConfig, type MesConfig } from '../../../lib/config/mes.ts';
import { createErpConnector, createMesConnector } from '../../../lib/connectors/index.ts';
import { log } from '../../../lib/log.ts';
import { startIntegrationJobs, type JobRunner } from './jobs.ts';
import { Integrations } from './service.ts';

export interface IntegrationSetup {
  mes?: MesConfig;
  erp?: ErpConfig;
  /** Run the job queue's workers and schedules in this process (the production role does; default true). */
  jobs?: boolean;
  pollingIntervalSeconds?: number;
}

/** mes.yml and erp.yml from the config directory (absent files: no MES, no ERP). */
export function loadIntegrationConfig(dir: string | undefined, env: NodeJS.ProcessEnv = process.env): IntegrationSetup {
  return { mes: loadMesConfig(dir, env), erp: loadErpConfig(dir, env) };
}

export interface RunningIntegrations {
  integrations: Integrations;
  jobs?: JobRunner;
  stop(): Promise<void>;
}

/** Connectors from the configuration, the service over them and, when there is anything to run, the job queue. */
export async function startIntegrations(db: Db, setup: IntegrationSetup): Promise<RunningIntegrations> {
  const mes = setup.mes ? createMesConnector(setup.mes) : undefined;
  const erp = setup.erp ? createErpConnector(setup.erp) : undefined;
  const integrations = new Integrations(db, setup.mes, setup.erp, mes, erp);
  const jobs =
    (mes || erp) && setup.jobs !== false
      ? await startIntegrationJobs(integrations, { pollingIntervalSeconds: setup.pollingIntervalSeconds })
      : undefined;
  if (mes || erp) log.info({ mes: mes?.system, erp: erp?.system, jobs: !!jobs }, 'MES/ERP integration ready');
  return {
    integrations,
    jobs,
    stop: async () => {
      await jobs?.stop();
      await integrations.close();
    },
  };
}
