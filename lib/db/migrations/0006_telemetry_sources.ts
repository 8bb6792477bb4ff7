import { sql, type Kysely } from 'kysely';

/**
 * What every telemetry source of every ingest worker says of itself (TelemetrySource.status), saved every couple of
 * seconds so the iot subgraph (another process) can serve it: one row per worker and source.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table iot.telemetry_sources (
      worker text not null,
      name text not null,
      kind text not null,
      state text not null check (state in ('STARTING', 'RUNNING', 'DEGRADED', 'STOPPED')),
      ready boolean not null,
      problem text,
      counters jsonb not null default '{}',
      updated_at timestamptz not null default now(),
      primary key (worker, name)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists iot.telemetry_sources`.execute(db);
}
