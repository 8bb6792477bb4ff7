import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../lib/embedded/postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    mqttUrl: string;
  }
}

/**
 * Real Postgres for every test: DATABASE_URL when set (CI: the machine's PostgreSQL), else an embedded one
 * for the run. Each test file then creates its own database from this one.
 */
export default async function setup(project: TestProject) {
  let stop: (() => Promise<void>) | undefined;
  let dir: string | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    dir = mkdtempSync(join(tmpdir(), 'hub-test-pg-'));
    const pg = await startEmbeddedPostgres(dir, 'hub_tests');
    url = pg.url;
    stop = pg.stop;
  }
  project.provide('adminDatabaseUrl', url);
  project.provide('mqttUrl', process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883');
  return async () => {
    await stop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
