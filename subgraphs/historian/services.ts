import type { HistorianConfig } from '../../lib/config/historian.ts';
import { createHistorianConnector } from '../../lib/connectors/index.ts';
import type { HistorianConnector } from '../../lib/connectors/historian/types.ts';
import type { ServiceDeps, Services } from '../../lib/subgraph/module.ts';

/** What the historian subgraph's resolvers reach as ctx.services: one connector per historian of historian.yml. */
export interface HistorianServices {
  historians: ReadonlyMap<string, { config: HistorianConfig; connector: HistorianConnector }>;
}

export function historianServices({ settings }: ServiceDeps): Services<HistorianServices> {
  const historians = new Map(
    settings.historian.historians.map((config) => [
      config.name,
      { config, connector: createHistorianConnector(config) },
    ]),
  );
  return {
    value: { historians },
    async stop() {
      for (const h of historians.values()) h.connector.close();
    },
  };
}
