import { describe, expect, it } from 'vitest';
import type { GraphQLDataSource } from '@apollo/gateway';
import { readSupergraph } from '../../lib/schema.ts';
import { BatchingEntitiesDataSource } from '../../gateway/subscriptions/batching.ts';
import { EventCompleter } from '../../gateway/subscriptions/complete-event.ts';
import { SubscriptionPlanner } from '../../gateway/subscriptions/planner.ts';

/**
 * Contract test for the internal-ish @apollo APIs the subscription engine relies on (federation.md §1, §6):
 * the query planner's Subscription plans and the synthetic-plan execution of `rest`. If a version bump of the
 * pinned @apollo packages breaks either, this fails before any dashboard does.
 */
const planner = new SubscriptionPlanner(readSupergraph());
const DOC = `subscription { sensorReadings(filter: { machineIds: ["M-1"] }) { value machine { name line { id }
  openAlerts { type } } } }`;

const fakeService = (calls: unknown[][], answer: (rep: any) => unknown): GraphQLDataSource => ({
  process: async ({ request }) => {
    const reps = request.variables!.representations as any[];
    calls.push(reps);
    return { data: { _entities: reps.map(answer) } };
  },
});

describe('subscription plans', () => {
  it('plans a primary fetch on the owning subgraph and the rest as entity fetches', () => {
    const p = planner.prepare(DOC);
    if (p.kind !== 'subscription') throw new Error(`expected a subscription plan, got ${p.kind}`);
    expect(p.plan.primary.serviceName).toBe('iot');
    expect(p.plan.primary.operation).toContain('sensorReadings');
    const rest = JSON.stringify(p.plan.rest);
    expect(rest).toContain('"serviceName":"production"');
    expect(rest).toContain('"serviceName":"quality"');
    expect(planner.prepare(DOC)).toBe(p); // cached
  });

  it('sorts documents that are not subscriptions or not valid', () => {
    expect(planner.prepare('query { sites { totalCount } }').kind).toBe('query');
    const bad = planner.prepare('subscription { sensorReadings { nope } }');
    expect(bad.kind === 'error' && bad.errors[0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const broken = planner.prepare('subscription {');
    expect(broken.kind === 'error' && broken.errors[0]!.extensions.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  it(`completes an event with the other subgraphs, \
batching concurrent events into one _entities call each`, async () => {
    const p = planner.prepare(DOC);
    if (p.kind !== 'subscription') throw new Error('not planned');
    const production: unknown[][] = [];
    const quality: unknown[][] = [];
    const completer = new EventCompleter(planner, {
      production: new BatchingEntitiesDataSource(
        fakeService(production, (r) => ({ name: `Machine ${r.id}`, line: { id: 'L1' } })),
        5,
      ),
      quality: new BatchingEntitiesDataSource(
        fakeService(quality, () => ({ openAlerts: [{ type: 'GAP' }] })),
        5,
      ),
    });
    const event = (id: string, value: number) => ({
      sensorReadings: { __typename: 'SensorReading', value, machine: { __typename: 'Machine', id } },
    });
    const ctx = { viewer: { sub: 't', role: 'viewer' as const }, requestId: 'r', internalToken: 'x' };
    const results = await Promise.all([
      completer.complete(p.plan, DOC, {}, ctx, event('M-1', 1)),
      completer.complete(p.plan, DOC, {}, ctx, event('M-2', 2)),
      completer.complete(p.plan, DOC, {}, ctx, event('M-1', 3)),
    ]);
    expect(results.map((r) => r.data)).toEqual([
      {
        sensorReadings: {
          value: 1,
          machine: { name: 'Machine M-1', line: { id: 'L1' }, openAlerts: [{ type: 'GAP' }] },
        },
      },
      {
        sensorReadings: {
          value: 2,
          machine: { name: 'Machine M-2', line: { id: 'L1' }, openAlerts: [{ type: 'GAP' }] },
        },
      },
      {
        sensorReadings: {
          value: 3,
          machine: { name: 'Machine M-1', line: { id: 'L1' }, openAlerts: [{ type: 'GAP' }] },
        },
      },
    ]);
    // Three events, one call per subgraph, and M-1 asked for once.
    expect(production).toHaveLength(1);
    expect(quality).toHaveLength(1);
    expect(production[0]!.map((r: any) => r.id)).toEqual(['M-1', 'M-2']);
  });

  it('reuses entities for cacheMs, per scope, and never caches an entity an error points at', async () => {
    const calls: unknown[][] = [];
    let fail = false;
    const inner: GraphQLDataSource = {
      process: async ({ request }) => {
        const reps = request.variables!.representations as any[];
        calls.push(reps);
        return {
          data: { _entities: reps.map((r) => (fail && r.id === 'M-2' ? null : { name: `Machine ${r.id}` })) },
          errors: fail ? [{ message: 'boom', path: ['_entities', reps.findIndex((r) => r.id === 'M-2')] }] : undefined,
        };
      },
    };
    const source = new BatchingEntitiesDataSource(inner, 1, 200);
    const ask = (ids: string[], lines?: string[]) =>
      source.process({
        request: { query: 'q', variables: { representations: ids.map((id) => ({ __typename: 'Machine', id })) } },
        context: { viewer: { sub: 'u', role: 'viewer', lines }, requestId: 'r', internalToken: 't' },
      } as never);
    fail = true;
    const first = await ask(['M-1', 'M-2']);
    expect(first.errors?.[0]?.path).toEqual(['_entities', 1]);
    fail = false;
    expect((await ask(['M-1'])).data).toEqual({ _entities: [{ name: 'Machine M-1' }] });
    expect(calls).toHaveLength(1); // M-1 from the cache
    await ask(['M-1', 'M-2']); // M-2 was an error: fetched again
    expect(calls).toHaveLength(2);
    await ask(['M-1'], ['LINE-1']); // another scope: its own entries
    expect(calls).toHaveLength(3);
    await new Promise((r) => setTimeout(r, 250));
    await ask(['M-1']); // expired
    expect(calls).toHaveLength(4);
  });
});
