import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakePiWebApi } from '../fakes/pi-web-api.ts';
import { until } from './until.ts';
import type { TestHub } from './hub.ts';

export const PI_SERVER = '\\\\PISRV1\\';
export const MACHINES = ['M-101', 'M-102', 'M-103', 'M-201', 'M-202', 'M-203'];

export interface MappedTag {
  tag: string;
  machineId: string;
  scale?: number;
  offset?: number;
  signalType?: string;
  unit?: string;
}

/**
 * A config directory whose historian.yml names the PI fake as `PI-1` and maps `tags` to the demo plant's machines:
 * what a plant engineer writes. Backfill checkpoints and leases are short so a test sees them within a second or two.
 */
export function historianConfig(
  pi: FakePiWebApi,
  tags: readonly MappedTag[],
  more: { maxCount?: number; frontfill?: string; leaseSeconds?: number } = {},
): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-historian-'));
  const mappings = tags
    .map(
      (t) =>
        `  - { historian: PI-1, tag: ${JSON.stringify(t.tag)}, machineId: ${t.machineId}, ` +
        `signalType: ${t.signalType ?? 'flow'}, unit: ${JSON.stringify(t.unit ?? 'm3/h')}, scale: ${t.scale ?? 1}, ` +
        `offset: ${t.offset ?? 0} }`,
    )
    .join('\n');
  writeFileSync(
    join(dir, 'historian.yml'),
    `historians:
  - name: PI-1
    type: pi-web-api
    maxCount: ${more.maxCount ?? 1000}
    connection:
      baseUrl: ${pi.url}
      auth: { type: basic, username: piuser, password: "\${PI_PASSWORD}" }
      timeoutSeconds: 5
      retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 }
backfill: { leaseSeconds: ${more.leaseSeconds ?? 2}, checkpointMs: 100, maxTagAttempts: 2 }
frontfill: ${more.frontfill ?? '{ enabled: false }'}
tagMappings:
${mappings}
`,
  );
  return dir;
}

export const PI_ENV = { PI_PASSWORD: 'pi-password-1' };

/** The ids of the hub's mappings on PI-1 by tag, once historian.yml's are all made (machines come with the seed). */
export async function mappingIds(hub: TestHub, count: number): Promise<Map<string, string>> {
  // The demo seed has mappings of its own (no historian): only PI-1's are counted.
  const read = () =>
    hub.db.selectFrom('historian.tagMappings').select(['id', 'tag']).where('historian', '=', 'PI-1').execute();
  const rows = await until('historian.yml mappings made', read, (r) => r.length >= count, 30_000, 200);
  return new Map(rows.map((r) => [r.tag, r.id]));
}

export const PROGRESS = `query($id: ID!) { backfillProgress(jobId: $id) {
  id status running error pointsFetched pointsImported pointsRejected pointsDuplicate tagCount tagsCompleted tagsFailed
  progress pointsPerSecond etaSeconds } }`;

/** Polls the job through the gateway until it is in one of `statuses`. */
export async function jobIn(hub: TestHub, token: string, id: string, statuses: string[], ms = 60_000) {
  const read = async () => (await hub.gql(token, PROGRESS, { id })).body.data?.backfillProgress;
  return until(`backfill ${id} in ${statuses.join('/')}`, read, (j) => statuses.includes(j?.status), ms, 100);
}

export const START = `mutation($i: StartBackfillInput!) { startBackfill(input: $i) { id status historian from to } }`;
