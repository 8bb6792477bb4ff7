/** Hive Gateway as a bench comparison point: its CLI, and our supergraph pointed at the running subgraphs. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { supergraphFile } from '../../lib/schema.ts';

const HIVE_PKG = fileURLToPath(new URL('../../node_modules/@graphql-hive/gateway/', import.meta.url));
// Run the package's bin with node directly: no npx wrapper process in between.
export const HIVE_BIN =
  HIVE_PKG +
  (JSON.parse(readFileSync(`${HIVE_PKG}package.json`, 'utf8')) as { bin: Record<string, string> }).bin['hive-gateway'];

/** Our committed supergraph with its placeholder routing URLs (http://<name>.invalid/graphql) made real. */
export function withSubgraphUrls(sdl: string, subgraphUrls: Record<string, string>): string {
  return sdl.replace(/url: "http:\/\/(\w+)\.invalid\/graphql"/g, (m, name: string) => {
    if (!subgraphUrls[name]) throw new Error(`${supergraphFile}: no running subgraph for ${m}`);
    return `url: "${subgraphUrls[name]}"`;
  });
}
