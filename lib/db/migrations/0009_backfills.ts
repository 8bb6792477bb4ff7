import { sql, type Kysely } from 'kysely';

/**
 * Historian backfills as the job runner runs them, and what the hub has fetched of each tag.
 *
 * - backfill_jobs: one request (a historian, its tags, a range, a priority) with its state; the lease (worker,
 *   lease_until) keeps two instances from running one job, and lets another take it over when its worker died.
 *   The old one-tag table held nothing (no code wrote it): it is replaced.
 * - backfill_tasks: per tag of a job, its state, how far it has read, and its counts.
 * - tag_watermarks: per tag mapping, the time ranges fetched so far (backfills and the frontfill both add to it):
 *   its lower and upper bounds are the low and high watermarks, and what is missing in between was never fetched.
 * - telemetry.states: digital and enumeration values (PI digital states, system states such as "I/O Timeout") as
 *   the name and code the historian gave, never as numbers in telemetry.readings.
 * - Tag mappings get their telemetry series (as sensors do), and changing one tells the pipeline's caches.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table historian.backfill_jobs;
    create table historian.backfill_jobs (
      id uuid primary key default gen_random_uuid(),
      historian text not null,
      range_from timestamptz not null,
      range_to timestamptz not null,
      priority integer not null default 0,
      status text not null default 'PENDING'
        check (status in ('PENDING','RUNNING','PAUSED','COMPLETED','FAILED','CANCELLED')),
      created_by text,
      created_at timestamptz not null default now(),
      started_at timestamptz,
      completed_at timestamptz,
      error text,
      worker text,
      lease_until timestamptz,
      run_started_at timestamptz,
      run_fetched bigint not null default 0,
      check (range_to > range_from)
    );
    create index on historian.backfill_jobs (created_at desc);
    create index on historian.backfill_jobs (status) where status in ('PENDING','RUNNING');

    create table historian.backfill_tasks (
      job_id uuid not null references historian.backfill_jobs(id) on delete cascade,
      tag_mapping_id uuid not null references historian.tag_mappings(id),
      status text not null default 'PENDING'
        check (status in ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')),
      position timestamptz,
      fetched bigint not null default 0,
      imported bigint not null default 0,
      rejected bigint not null default 0,
      duplicate bigint not null default 0,
      error text,
      updated_at timestamptz not null default now(),
      primary key (job_id, tag_mapping_id)
    );
    create index on historian.backfill_tasks (tag_mapping_id);

    create table historian.tag_watermarks (
      tag_mapping_id uuid primary key references historian.tag_mappings(id) on delete cascade,
      fetched tstzmultirange not null default '{}',
      updated_at timestamptz not null default now()
    );

    create table telemetry.states (
      series_id integer not null,
      ts timestamptz not null,
      code integer not null,
      name text not null,
      quality smallint not null check (quality between 0 and 100),
      source smallint not null,
      primary key (series_id, ts)
    );

    insert into telemetry.series (machine_id, signal, unit, tag_mapping_id)
      select machine_id, signal_type, unit, id from historian.tag_mappings m
      where not exists (select 1 from telemetry.series s where s.tag_mapping_id = m.id);

    create trigger notify_change after insert or update or delete or truncate on historian.tag_mappings
      for each statement execute function telemetry.notify_change();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop trigger if exists notify_change on historian.tag_mappings;
    drop table if exists telemetry.states, historian.tag_watermarks, historian.backfill_tasks;
    drop table if exists historian.backfill_jobs;
  `.execute(db);
}
