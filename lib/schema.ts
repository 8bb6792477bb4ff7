import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, type DocumentNode } from 'graphql';
import { composeServices } from '@apollo/composition';
import { SUBGRAPHS, type SubgraphName } from './config/hub.ts';

const schemaDir = fileURLToPath(new URL('../schema/', import.meta.url));

export function subgraphTypeDefs(name: SubgraphName): DocumentNode {
  return parse(readFileSync(`${schemaDir}${name}.graphql`, 'utf8'));
}

export const supergraphFile = `${schemaDir}supergraph.graphql`;

export function readSupergraph(): string {
  return readFileSync(supergraphFile, 'utf8');
}

/** Composition at build time: the routing URLs are placeholders, the gateway maps names to real URLs at start. */
export function composeSupergraph(): { sdl: string; file: string } {
  const result = composeServices(
    SUBGRAPHS.map((name) => ({ name, typeDefs: subgraphTypeDefs(name), url: `http://${name}.invalid/graphql` })),
  );
  if (result.errors) {
    throw new Error(`composition failed:\n${result.errors.map((e) => `- ${e.message}`).join('\n')}`);
  }
  return { sdl: result.supergraphSdl + (result.supergraphSdl.endsWith('\n') ? '' : '\n'), file: supergraphFile };
}
