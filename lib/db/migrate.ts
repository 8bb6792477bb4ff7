import { sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import type { Db } from './index.ts';
import * as m0001 from './migrations/0001_foundation.ts';
import * as m0002 from './migrations/0002_ingest.ts';
import * as m0003 from './migrations/0003_http_status.ts';
import * as m0004 from './migrations/0004_mes_erp.ts';
import * as m0005 from './migrations/0005_outbox_claims.ts';
import * as m0006 from './migrations/0006_telemetry_sources.ts';
import * as m0007 from './migrations/0007_status_renamed.ts';
import * as m0008 from './migrations/0008_named_historians.ts';
import * as m0009 from './migrations/0009_backfills.ts';
import * as m0010 from './migrations/0010_tag_types_dead_letter_keys.ts';

/** Migrations in order; a static list keeps them bundled with the code that needs them (no path lookups). */
const MIGRATIONS: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_ingest': m0002,
  '0003_http_status': m0003,
  '0004_mes_erp': m0004,
  '0005_outbox_claims': m0005,
  '0006_telemetry_sources': m0006,
  '0007_status_renamed': m0007,
  '0008_named_historians': m0008,
  '0009_backfills': m0009,
  '0010_tag_types_dead_letter_keys': m0010,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

/** Runs pending migrations; safe to call from several processes at once (kysely takes an advisory lock). */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider, migrationTableSchema: 'public' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  // New months get their partitions without a migration. Processes starting together would each find a new month's
  // partition missing and create it ("already exists" for all but one): one at a time, under a lock of its own.
  await db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext('telemetry.ensure_partitions'))`.execute(tx);
    await sql`select telemetry.ensure_partitions(
      (now() - interval '1 month')::date, (now() + interval '3 months')::date)`.execute(tx);
  });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
