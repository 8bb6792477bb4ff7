import { describe, expect, it } from 'vitest';
import { composeSupergraph, readSupergraph } from '../../lib/schema.ts';

describe('schema/supergraph.graphql', () => {
  it('is exactly what composing the four subgraph SDLs gives (run `npm run compose` when this fails)', () => {
    expect(readSupergraph()).toBe(composeSupergraph().sdl);
  });
});
