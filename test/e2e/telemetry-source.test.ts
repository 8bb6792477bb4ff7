import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest.ts';
import { PolledValueSource } from '../fixtures/polled-value-source.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/** The README's example source (docs/telemetry.md "Adding a source"), run through the one pipeline. */
let hub: TestHub;
let ingest: RunningIngest | undefined;

beforeAll(async () => {
  hub = await startTestHub({ seed: true });
});
afterAll(async () => {
  await ingest?.stop();
  await hub?.close();
});

describe('a source added as one file implementing TelemetrySource', () => {
  it('is the code the docs show, word for word', () => {
    const code = readFileSync('test/fixtures/polled-value-source.ts', 'utf8');
    expect(readFileSync('docs/telemetry.md', 'utf8')).toContain(code.trim());
  });

  it(`stores what it reads through the pipeline (validated, placed on its machine), reports itself, \
and stops`, async () => {
    let n = 0;
    const source = new PolledValueSource({ sensorId: 'M-101-TEMP', intervalMs: 20, read: async () => 40 + n++ });
    const iot = IotConfigSchema.parse({ live: { enabled: false } });
    ingest = await startIngest({
      db: hub.db,
      databaseUrl: hub.databaseUrl,
      iot,
      registry: new Registry(),
      extraSources: [source],
      statusIntervalMs: 100,
    });
    const stored = await until(
      'ten readings stored',
      async () =>
        (
          await sql<{ n: number }>`select count(*)::int as n from telemetry.readings r join telemetry.series s
            on s.id = r.series_id where s.sensor_id = 'M-101-TEMP' and r.source = 3`.execute(hub.db)
        ).rows[0]!.n,
      (x) => x >= 10,
    );
    expect(stored).toBeGreaterThanOrEqual(10);
    expect(ingest.ready()).toBe(true);
    const admin = await hub.token({ role: 'admin' });
    const reported = await until(
      'the source in telemetrySources',
      async () =>
        (await hub.gql(admin, '{ telemetrySources { name kind state ready counters } }')).body.data.telemetrySources,
      (rows: { name: string }[]) => rows.some((r) => r.name === 'polled-value'),
    );
    expect(reported.find((r: { name: string }) => r.name === 'polled-value')).toMatchObject({
      kind: 'HTTP',
      state: 'RUNNING',
      ready: true,
    });
    await ingest.stop();
    ingest = undefined;
    const { read, committed, failed } = source.status().counters as Record<string, number>;
    expect(failed).toBe(0);
    expect(committed).toBe(read); // everything handed over before stop() was stored and acknowledged
    const rows = (
      await sql<{ n: number }>`select count(*)::int as n from telemetry.readings r join telemetry.series s
        on s.id = r.series_id where s.sensor_id = 'M-101-TEMP' and r.source = 3`.execute(hub.db)
    ).rows[0]!.n;
    expect(rows).toBe(committed);
  });
});
