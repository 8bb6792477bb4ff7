import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHistorian, type FakeHistorian } from '../fakes/aveva-historian.ts';
import { startPiWebApi, type FakePiWebApi } from '../fakes/pi-web-api.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Browsing a plant's historians through the gateway, as an engineer mapping tags does: the historians historian.yml
 * names, and tags looked up on each in bulk (PI `\\server\tag` → WebId; AVEVA FQN), unknown ones with the reason.
 */
let hub: TestHub;
let pi: FakePiWebApi;
let aveva: FakeHistorian;
let engineer: string;

beforeAll(async () => {
  pi = await startPiWebApi({ auth: { basic: { user: 'hub', password: 'pi-secret-1' } } });
  pi.addTag('\\\\PISRV1\\FIC101.PV', { type: 'Float32', units: 'm3/h' });
  pi.addTag('\\\\PISRV1\\PUMP1.STATE', { type: 'Digital' });
  aveva = await startHistorian({ basic: { user: 'hub', password: 'av-secret-1' }, bearer: null });
  aveva.addTag('Baytown.tank_level', { type: 'analog', unit: 'm' });
  const dir = mkdtempSync(join(tmpdir(), 'hub-historian-tags-'));
  writeFileSync(
    join(dir, 'historian.yml'),
    `historians:
  - name: PI-SITE1
    type: pi-web-api
    connection:
      baseUrl: ${pi.url}
      auth: { type: basic, username: hub, password: "\${PI_PASSWORD}" }
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }
  - name: AVEVA-1
    type: aveva-rest
    connection:
      baseUrl: ${aveva.url}
      auth: { type: basic, username: hub, password: "\${AVEVA_PASSWORD}" }
`,
  );
  hub = await startTestHub({
    seed: true,
    config: { dir, env: { PI_PASSWORD: 'pi-secret-1', AVEVA_PASSWORD: 'av-secret-1' } },
  });
  engineer = await hub.token({ role: 'engineer' });
});
afterAll(async () => {
  await hub?.close();
  await pi?.close();
  await aveva?.close();
});

const RESOLVE = `query($h: ID!, $tags: [String!]!) {
  resolveHistorianTags(historian: $h, tags: $tags) { tag ref type units error } }`;

describe('historians through the gateway', () => {
  it('lists the historians historian.yml configures', async () => {
    const { body } = await hub.gql(engineer, '{ historians { name type } }');
    expect(body).toEqual({
      data: {
        historians: [
          { name: 'PI-SITE1', type: 'PI_WEB_API' },
          { name: 'AVEVA-1', type: 'AVEVA_REST' },
        ],
      },
    });
  });

  it('resolves PI paths to WebIds in bulk, an unknown path failed with the reason, in the order asked', async () => {
    const tags = ['\\\\PISRV1\\PUMP1.STATE', '\\\\PISRV1\\NOPE', '\\\\PISRV1\\FIC101.PV'];
    const { body } = await hub.gql(engineer, RESOLVE, { h: 'PI-SITE1', tags });
    expect(body.errors).toBeUndefined();
    const [state, nope, flow] = body.data.resolveHistorianTags;
    expect(flow).toEqual({
      tag: tags[2],
      ref: pi.tags.get(tags[2]!.toUpperCase())!.webId,
      type: 'Float32',
      units: 'm3/h',
      error: null,
    });
    expect(state).toMatchObject({ tag: tags[0], type: 'Digital', error: null });
    expect(state.ref).toBe(pi.tags.get(tags[0]!.toUpperCase())!.webId);
    expect(nope).toMatchObject({ tag: tags[1], ref: null });
    expect(nope.error).toMatch(/NOPE/);
  });

  it('resolves AVEVA FQNs, an unknown one failed with a reason', async () => {
    const { body } = await hub.gql(engineer, RESOLVE, { h: 'AVEVA-1', tags: ['Baytown.tank_level', 'Baytown.nope'] });
    expect(body.data.resolveHistorianTags).toEqual([
      { tag: 'Baytown.tank_level', ref: 'Baytown.tank_level', type: 'Analog', units: 'm', error: null },
      { tag: 'Baytown.nope', ref: null, type: null, units: null, error: expect.stringContaining('Baytown.nope') },
    ]);
  });

  it('refuses an unknown historian, too many tags and a viewer, each with its code', async () => {
    const unknown = await hub.gql(engineer, RESOLVE, { h: 'NOPE', tags: ['x'] });
    expect(unknown.body.errors[0].extensions.code).toBe('NOT_FOUND');
    const many = await hub.gql(engineer, RESOLVE, {
      h: 'PI-SITE1',
      tags: Array.from({ length: 1001 }, (_, i) => `t${i}`),
    });
    expect(many.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const viewer = await hub.token({ role: 'viewer' });
    const refused = await hub.gql(viewer, '{ historians { name } }');
    expect(refused.body.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  it('a historian refusing the hub is a typed upstream error, not a hang or a 500', async () => {
    pi.setMode('status', { status: 401 });
    try {
      const { body } = await hub.gql(engineer, RESOLVE, { h: 'PI-SITE1', tags: ['\\\\PISRV1\\FIC101.PV'] });
      expect(body.errors[0].extensions.code).toBe('UPSTREAM_BAD_RESPONSE');
      expect(body.errors[0].extensions.system).toBe('PI-SITE1');
    } finally {
      pi.setMode('ok');
    }
  });
});

const CREATE = `mutation($i: CreateTagMappingInput!) {
  createTagMapping(input: $i) { id historian historianSystem ref tag machine { id } unit scaleFactor offset } }`;
const mapping = (extra: Record<string, unknown>) => ({
  machineId: 'M-101',
  signalType: 'flow',
  unit: 'm3/h',
  scaleFactor: 0.5,
  offset: 1,
  ...extra,
});

describe('tag mappings checked on their historian', () => {
  it('a mapping naming a historian is looked up there first and keeps the tag handle', async () => {
    const tag = '\\\\PISRV1\\FIC101.PV';
    const { body } = await hub.gql(engineer, CREATE, { i: mapping({ historian: 'PI-SITE1', tag }) });
    expect(body.errors).toBeUndefined();
    expect(body.data.createTagMapping).toMatchObject({
      historian: 'PI-SITE1',
      historianSystem: 'PI',
      ref: pi.tags.get(tag.toUpperCase())!.webId,
      tag,
      machine: { id: 'M-101' },
      scaleFactor: 0.5,
      offset: 1,
    });
    const fetched = await hub.gql(engineer, 'query($id: ID!) { tagMapping(id: $id) { historian ref } }', {
      id: body.data.createTagMapping.id,
    });
    expect(fetched.body.data.tagMapping).toEqual({ historian: 'PI-SITE1', ref: body.data.createTagMapping.ref });
  });

  it('a tag the historian does not know is refused with its reason, and nothing is stored', async () => {
    const before = await hub.gql(engineer, '{ tagMappings(filter: { machineId: "M-102" }) { totalCount } }');
    const { body } = await hub.gql(engineer, CREATE, {
      i: mapping({ historian: 'AVEVA-1', tag: 'Baytown.nope', machineId: 'M-102' }),
    });
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(body.errors[0].message).toContain('Baytown.nope is not a tag of AVEVA-1');
    expect(body.errors[0].extensions.reason).toContain('Baytown.nope');
    const after = await hub.gql(engineer, '{ tagMappings(filter: { machineId: "M-102" }) { totalCount } }');
    expect(after.body.data.tagMappings.totalCount).toBe(before.body.data.tagMappings.totalCount);
  });

  it('refuses a historian system that disagrees with the historian, and a mapping naming neither', async () => {
    const clash = await hub.gql(engineer, CREATE, {
      i: mapping({ historian: 'AVEVA-1', historianSystem: 'PI', tag: 'Baytown.tank_level' }),
    });
    expect(clash.body.errors[0]).toMatchObject({
      message: 'historian AVEVA-1 is a WONDERWARE historian, not PI',
      extensions: { code: 'BAD_USER_INPUT' },
    });
    const neither = await hub.gql(engineer, CREATE, { i: mapping({ tag: 'Baytown.tank_level' }) });
    expect(neither.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('a historian system alone is taken as before (not checked: there is no historian to ask)', async () => {
    const { body } = await hub.gql(engineer, CREATE, {
      i: mapping({ historianSystem: 'WONDERWARE', tag: 'Anywhere.anything', machineId: 'M-103' }),
    });
    expect(body.data.createTagMapping).toMatchObject({ historian: null, ref: null, historianSystem: 'WONDERWARE' });
  });
});
