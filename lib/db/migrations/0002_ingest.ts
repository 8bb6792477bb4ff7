import { sql, type Kysely } from 'kysely';

/**
 * Live ingest: dead letters (what could not be used, with its reason and raw payload), loss events
 * (Sparkplug seq gaps), and change notifications for the pipeline's in-memory caches.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table quality.dead_letters (
      id bigint generated always as identity primary key,
      received_at timestamptz not null default now(),
      source smallint not null,
      reason text not null,
      detail text not null,
      topic text,
      payload bytea,
      sensor_id text,
      machine_id text
    );
    create index on quality.dead_letters (received_at desc);
    create index on quality.dead_letters (reason, received_at desc);

    create table quality.loss_events (
      id bigint generated always as identity primary key,
      at timestamptz not null default now(),
      source smallint not null,
      kind text not null,
      detail text not null,
      expected integer,
      got integer,
      stream text
    );
    create index on quality.loss_events (at desc);

    -- The pipeline keeps sensors, rules and the production schedule in memory; these notify it at commit.
    create function telemetry.notify_change() returns trigger language plpgsql as $$
    begin
      perform pg_notify('hub_changes', tg_table_schema || '.' || tg_table_name);
      return null;
    end $$;
    create trigger notify_change after insert or update or delete or truncate on production.work_orders
      for each statement execute function telemetry.notify_change();
    create trigger notify_change after insert or update or delete or truncate on production.shifts
      for each statement execute function telemetry.notify_change();
    create trigger notify_change after insert or update or delete or truncate on production.recipes
      for each statement execute function telemetry.notify_change();
    create trigger notify_change after insert or update or delete or truncate on production.machines
      for each statement execute function telemetry.notify_change();
    create trigger notify_change after insert or update or delete or truncate on iot.sensors
      for each statement execute function telemetry.notify_change();
    create trigger notify_change after insert or update or delete or truncate on quality.range_rules
      for each statement execute function telemetry.notify_change();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table if exists quality.dead_letters, quality.loss_events;
    drop function if exists telemetry.notify_change() cascade;
  `.execute(db);
}
