import type { SubgraphName } from '../lib/config/hub.ts';
import type { SubgraphModule } from '../lib/subgraph/module.ts';
import { historian } from '../subgraphs/historian/index.ts';
import { iot } from '../subgraphs/iot/index.ts';
import { production } from '../subgraphs/production/index.ts';
import { quality } from '../subgraphs/quality/index.ts';

/** Every subgraph the hub runs, by name; each is a SubgraphModule and needs nothing else to start. */
export const SUBGRAPH_MODULES: Record<SubgraphName, SubgraphModule<unknown, unknown>> = {
  production,
  historian,
  iot,
  quality,
};

/** Ports each subgraph takes when it runs as its own process and hub.yml names none. */
export const DEFAULT_SUBGRAPH_PORTS: Record<SubgraphName, number> = {
  production: 4001,
  historian: 4002,
  iot: 4003,
  quality: 4004,
};
