import { settingsOf, type Settings } from '../lib/config/settings.ts';
import type { Db } from '../lib/db/index.ts';
import { listen, type Listening } from '../lib/http.ts';
import type { JobRunner } from '../lib/jobs/runner.ts';
import { log } from '../lib/log.ts';
import type { SubgraphModule } from '../lib/subgraph/module.ts';
import { createSubgraphApp, type LiveOptions } from '../lib/subgraph/server.ts';
import { serveSubscriptions } from '../lib/subgraph/ws.ts';
import { createMetrics } from '../lib/metrics.ts';

export interface SubgraphDeps {
  db: Db;
  internalSecret: string;
  host: string;
  port: number;
  /** Where the live channel is read (subscriptions); default: hub.yml mqtt.url and liveTopicPrefix. */
  live?: LiveOptions;
  /** What the module's services are made from (mes.yml, erp.yml...); default: nothing configured. */
  settings?: Settings;
  /** The process's job runner, when this process runs jobs. */
  jobs?: JobRunner;
  /** The services' clock (ServiceDeps.now). */
  now?: () => number;
}

/**
 * One subgraph, from its module: its services made and started, then HTTP and (if its schema has a Subscription
 * type) WebSocket on /graphql, both building their context with the same buildContext. close() stops taking
 * requests first, then stops the services.
 */
export async function startSubgraph<L, S>(m: SubgraphModule<L, S>, d: SubgraphDeps): Promise<Listening> {
  const settings = d.settings ?? settingsOf({});
  const metrics = createMetrics(m.name);
  const services = m.services?.({ db: d.db, settings, jobs: d.jobs, now: d.now, registry: metrics.registry });
  await services?.start?.();
  const live = d.live ?? { mqttUrl: settings.hub.mqtt.url, topicPrefix: settings.hub.mqtt.liveTopicPrefix };
  const made = await createSubgraphApp({
    module: m,
    db: d.db,
    internalSecret: d.internalSecret,
    services: services?.value ?? ({} as S),
    live,
    metrics,
  });
  const l = await listen(made.app, d.host, d.port, '/graphql');
  const ws = made.schema.getSubscriptionType()
    ? serveSubscriptions({
        server: l.server,
        schema: made.schema,
        deps: made.deps,
        verifyInternal: made.verifyInternal,
      })
    : undefined;
  log.info({ subgraph: m.name, url: l.url, subscriptions: Boolean(made.live) }, 'subgraph listening');
  return {
    ...l,
    close: async () => {
      await ws?.close();
      await made.live?.close();
      await l.close();
      await made.server.stop();
      await services?.stop?.();
    },
  };
}
