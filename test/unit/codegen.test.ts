import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate } from '@graphql-codegen/cli';
import config from '../../codegen.ts';

describe('generated resolver types', () => {
  it('match the SDLs (run `npm run codegen` when this fails; never edit __generated__ by hand)', async () => {
    const outputs = (await generate({ ...config, silent: true }, false)) as { filename: string; content: string }[];
    expect(outputs).toHaveLength(4);
    for (const o of outputs) expect(readFileSync(o.filename, 'utf8'), o.filename).toBe(o.content);
  }, 60_000);
});
