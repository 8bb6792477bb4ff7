import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import type { HistorianConfig } from '../../lib/config/historian.ts';
import { createHistorianConnector } from '../../lib/connectors/index.ts';
import type { HistorianConnector } from '../../lib/connectors/historian/types.ts';
import { log } from '../../lib/log.ts';
import type { ServiceDeps, Services } from '../../lib/subgraph/module.ts';
import { TelemetryCaches } from '../../lib/telemetry/caches.ts';
import { DEFAULT_PIPELINE, TelemetryPipeline } from '../../lib/telemetry/pipeline.ts';
import { saveSourceStatus } from '../../lib/telemetry/source-status.repo.ts';
import { Backfills } from './backfill/service.ts';
import { HistorianSource } from './backfill/source.ts';
import { applyConfiguredMappings } from './configured-mappings.ts';

/** What the historian subgraph's resolvers reach as ctx.services: the historians, and the backfill jobs. */
export interface HistorianServices {
  historians: ReadonlyMap<string, { config: HistorianConfig; connector: HistorianConnector }>;
  backfills: Backfills;
}

/**
 * One connector per historian of historian.yml; where this process runs jobs, the historians as a TelemetrySource
 * (backfills and the frontfill on the job runner) feeding the one pipeline, made here as every ingest process
 * makes it. Historian readings are not published on the live channel: a backfill is history, not live data.
 */
export function historianServices({ db, settings, jobs, now, registry }: ServiceDeps): Services<HistorianServices> {
  const historians = new Map(
    settings.historian.historians.map((config) => [
      config.name,
      { config, connector: createHistorianConnector(config) },
    ]),
  );
  const connectors = new Map([...historians].map(([name, h]) => [name, h.connector]));
  const databaseUrl = settings.hub.database.url;
  let stopIngest: (() => Promise<void>) | undefined;
  let retry: NodeJS.Timeout | undefined;
  return {
    value: {
      historians,
      backfills: new Backfills(db, historians, jobs, settings.historian.frontfill.lagSeconds * 1000, now),
    },
    async start() {
      if (!historians.size) return;
      // historian.yml's mappings; those that cannot be made yet (no machine, the historian away) are tried again.
      const apply = () => applyConfiguredMappings(db, historians, settings.historian.tagMappings);
      const first = await apply().catch((err: Error) => {
        log.warn({ err: err.message }, 'historian.yml mappings not made yet');
        return 1;
      });
      if (first > 0) {
        retry = setInterval(() => {
          void apply().then(
            (left) => left === 0 && clearInterval(retry),
            (err: Error) => log.warn({ err: err.message }, 'historian.yml mappings not made yet'),
          );
        }, settings.historian.backfill.leaseSeconds * 1000);
        retry.unref();
      }
      if (!jobs) return;
      if (!databaseUrl) {
        log.warn('historian jobs need hub.yml database.url (DATABASE_URL) for the pipeline: none run here');
        return;
      }
      const caches = new TelemetryCaches(db, databaseUrl);
      await caches.start();
      const pipeline = new TelemetryPipeline(db, caches, registry ?? new Registry(), {
        ...DEFAULT_PIPELINE,
        maxQueuedRows: 100_000,
      });
      const source = new HistorianSource({ connectors, jobs, settings: settings.historian, now });
      const worker = hostname();
      await source.start(pipeline, { db, log, worker });
      const save = () =>
        saveSourceStatus(db, worker, [source.status()]).catch((err) =>
          log.warn({ err: err.message }, 'historian source status not saved'),
        );
      const timer = setInterval(save, 2000);
      timer.unref();
      stopIngest = async () => {
        clearInterval(timer);
        await source.stop();
        await pipeline.stop();
        await caches.stop();
        await save();
      };
      log.info({ historians: [...historians.keys()] }, 'historian backfill and frontfill running');
    },
    async stop() {
      clearInterval(retry);
      await stopIngest?.();
      for (const h of historians.values()) h.connector.close();
    },
  };
}
