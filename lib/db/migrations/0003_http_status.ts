import { sql, type Kysely } from 'kysely';

/** The HTTP poller's per-endpoint status, written by the ingest worker so the iot subgraph can serve it. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table iot.http_endpoints (
      name text primary key,
      url text not null,
      interval_seconds integer not null,
      last_success_at timestamptz,
      last_failure_at timestamptz,
      last_error text,
      last_error_code text,
      consecutive_failures integer not null default 0,
      last_duration_ms integer,
      readings bigint not null default 0,
      dead_letters bigint not null default 0,
      skipped_polls bigint not null default 0,
      polling_since timestamptz,
      next_poll_at timestamptz,
      worker text not null,
      updated_at timestamptz not null default now()
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists iot.http_endpoints`.execute(db);
}
