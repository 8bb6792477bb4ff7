import { SUBGRAPHS, type SubgraphName } from '../lib/config/hub.ts';
import type { Settings } from '../lib/config/settings.ts';
import type { Db } from '../lib/db/index.ts';
import type { Listening } from '../lib/http.ts';
import { JobRunner } from '../lib/jobs/runner.ts';
import type { Secrets } from '../lib/secrets.ts';
import { gatewayOptions, startGateway } from './start-gateway.ts';
import { startSubgraph } from './start-subgraph.ts';
import { SUBGRAPH_MODULES } from './subgraphs.ts';

export interface RunningHub {
  url: string;
  port: number;
  db: Db;
  subgraphUrls: Record<SubgraphName, string>;
  stop: () => Promise<void>;
}

/** The process's job runner, unless hub.yml says this process runs no jobs. */
export function jobRunnerFor(settings: Settings, db: Db): JobRunner | undefined {
  const { enabled, pollingIntervalSeconds } = settings.hub.jobs;
  return enabled ? new JobRunner(db, { pollingIntervalSeconds }) : undefined;
}

/**
 * The whole hub in one process: the four subgraphs on local ports (with their services: the MES/ERP connectors of
 * mes.yml and erp.yml, and their jobs), and the gateway in front. Ingest is started beside it by the caller.
 */
export async function startAll(
  settings: Settings,
  db: Db,
  secrets: Secrets,
  opts: { now?: () => number } = {},
): Promise<RunningHub> {
  const jobs = jobRunnerFor(settings, db);
  const subgraphs: Partial<Record<SubgraphName, Listening>> = {};
  const urls = {} as Record<SubgraphName, string>;
  const stopSubgraphs = async () => {
    for (const s of Object.values(subgraphs)) await s.close();
    await jobs?.stop();
  };
  try {
    for (const name of SUBGRAPHS) {
      const { host, port } = settings.hub.subgraphs[name];
      const s = await startSubgraph(SUBGRAPH_MODULES[name], {
        db,
        internalSecret: secrets.internalSecret,
        host,
        port,
        settings,
        jobs,
        now: opts.now,
      });
      subgraphs[name] = s;
      urls[name] = s.url;
    }
  } catch (err) {
    await stopSubgraphs();
    throw err;
  }
  const gw = await startGateway(gatewayOptions(settings, secrets, urls));
  return {
    url: gw.url,
    port: gw.port,
    db,
    subgraphUrls: urls,
    stop: async () => {
      await gw.close();
      await stopSubgraphs();
    },
  };
}
