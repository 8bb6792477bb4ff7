import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobRunner } from '../../lib/jobs/runner.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';
import { makeOrders, startRestMes, type FakeRestMes } from '../fakes/mes-rest.ts';

let hub: TestHub;
let mes: FakeRestMes;
let boss: JobRunner;

beforeAll(async () => {
  mes = await startRestMes();
  const dir = mkdtempSync(join(tmpdir(), 'hub-jobs-'));
  writeFileSync(
    join(dir, 'mes.yml'),
    `mes:
  systemType: rest
  name: JOB-MES
  connection:
    baseUrl: ${mes.url}
    auth:
      type: oauth2
      tokenUrl: ${mes.url}/oauth/token
      clientId: ${mes.clientId}
      clientSecret: \${TEST_JOBS_MES_SECRET}
    timeoutSeconds: 1
    retry: { maxAttempts: 1 }
  # Once a day (at midnight UTC), so no cron run falls into the test; a failed run is retried 3 times, from 1 s.
  sync: { scheduleSyncIntervalMinutes: 1440, horizonDays: 3, lookBackHours: 1, retryLimit: 3, retryDelaySeconds: 1 }
  lines: [LINE-1, LINE-2]
`,
  );
  hub = await startTestHub({ seed: true, config: { dir, env: { TEST_JOBS_MES_SECRET: mes.clientSecret } } });
  boss = new JobRunner(hub.db);
  for (const o of makeOrders('LINE-2', 5, new Date(Date.now() + 3_600_000), ['P-HSG'], 'JOB-WO'))
    mes.orders.set(o.OrderNumber, o);
});
afterAll(async () => {
  await boss?.stop();
  await hub?.close();
  await mes?.close();
});

describe('scheduled syncs on the Postgres job queue', () => {
  it('keeps one durable cron schedule per served line', async () => {
    const rows = await sql<{
      name: string;
      cron: string;
    }>`select name, cron from pgboss.schedule order by name`.execute(hub.db);
    expect(rows.rows).toEqual([
      { name: 'schedule-sync.LINE-1', cron: '0 */24 * * *' },
      { name: 'schedule-sync.LINE-2', cron: '0 */24 * * *' },
    ]);
    const q = await sql<{
      name: string;
      policy: string;
    }>`select name, policy from pgboss.queue where name like 'schedule-sync.%' order by name`.execute(hub.db);
    expect(q.rows.map((r) => r.policy)).toEqual(['stately', 'stately']);
  });

  it(`runs a queued sync job through the same sync path, \
recorded as SCHEDULED and audited as the scheduler`, async () => {
    await boss.send('schedule-sync.LINE-2', { lineId: 'LINE-2', system: 'MES' });
    const runs = await until(
      'a scheduled run',
      async () =>
        (
          await sql<{
            status: string;
            trigger: string;
            created: number;
            requestedBy: string;
          }>`select status, trigger, created, requested_by from production.sync_runs where line_id = 'LINE-2'
            and status <> 'RUNNING'`.execute(hub.db)
        ).rows,
      (r) => r.length > 0,
      20_000,
    );
    expect(runs[0]).toEqual({ status: 'SUCCESS', trigger: 'SCHEDULED', created: 5, requestedBy: 'system:scheduler' });
    const audit = await sql<{
      actor: string;
      outcome: string;
    }>`select actor, outcome from audit.log where operation = 'sync.schedules'`.execute(hub.db);
    expect(audit.rows).toEqual([{ actor: 'system:scheduler', outcome: 'SUCCESS' }]);
  });

  it(`never runs two syncs of one line at once: \
a manual sync while one holds the line lock is refused with CONFLICT`, async () => {
    const { withTryLock } = await import('../../subgraphs/production/integration/shared.repo.ts');
    const eng = await hub.token({ role: 'engineer' });
    const held = await withTryLock(hub.db, 'schedule-sync:LINE-1', async () =>
      hub.gql(
        eng,
        `mutation { syncSchedules(lineId: "LINE-1", from: "2030-01-01T00:00:00Z", to: "2030-01-02T00:00:00Z") {
          status } }`,
      ),
    );
    expect(held.ran && held.value.body.errors[0].extensions.code).toBe('CONFLICT');
  });

  it(`retries a FAILED scheduled sync with exponential backoff from retryDelaySeconds, retryLimit times, \
then gives up`, async () => {
    mes.setMode('500');
    try {
      await boss.send('schedule-sync.LINE-1', { lineId: 'LINE-1', system: 'MES' });
      // The job runner marks the job failed once no retry is left: no further run can come after that.
      await until(
        'the job to fail for good',
        async () =>
          (
            await sql<{ state: string }>`select state from pgboss.job where name = 'schedule-sync.LINE-1'`.execute(
              hub.db,
            )
          ).rows,
        (rows) => rows.some((r) => r.state === 'failed'),
        60_000,
        250,
      );
      const runs = (
        await sql<{
          status: string;
          trigger: string;
          startedAt: Date;
          finishedAt: Date;
        }>`select status, trigger, started_at, finished_at from production.sync_runs where line_id = 'LINE-1'
          order by started_at`.execute(hub.db)
      ).rows;
      // The first run and retryLimit (3) retries.
      expect(runs.map((r) => [r.status, r.trigger])).toEqual(Array(4).fill(['FAILED', 'SCHEDULED']));
      // Retry n waits at least retryDelaySeconds·2ⁿ⁻¹ after the run before it failed: 1 s, 2 s, 4 s.
      const gaps = runs.slice(1).map((r, i) => r.startedAt.getTime() - runs[i]!.finishedAt.getTime());
      expect(gaps[0]).toBeGreaterThanOrEqual(1000);
      expect(gaps[1]).toBeGreaterThanOrEqual(2000);
      expect(gaps[2]).toBeGreaterThanOrEqual(4000);
    } finally {
      mes.setMode('ok');
    }
  }, 90_000);
});
