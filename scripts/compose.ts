/**
 * Composes schema/<subgraph>.graphql into schema/supergraph.graphql (committed; the gateway starts from it).
 * `--check` fails when the committed file is stale instead of writing it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { composeSupergraph } from '../lib/schema.ts';

const { sdl, file } = composeSupergraph();
if (process.argv.includes('--check')) {
  if (readFileSync(file, 'utf8') !== sdl) {
    console.error(`${file} is stale: run npm run compose`);
    process.exit(1);
  }
  console.log(`${file} is up to date`);
} else {
  writeFileSync(file, sdl);
  console.log(`wrote ${file}`);
}
