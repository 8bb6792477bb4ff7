import { sql, type Kysely } from 'kysely';

/**
 * MES/ERP integration: sync history, recipe downloads, the ERP material master, labour bookings, material
 * consumption and the outbox of order status reports to the MES. pg-boss keeps its own schema (`pgboss`),
 * created by pg-boss itself when the job queue starts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table production.sync_runs (
      id bigint generated always as identity primary key,
      system text not null,
      system_kind text not null check (system_kind in ('MES','ERP')),
      kind text not null check (kind in ('SCHEDULES','MATERIALS','LABOUR','CONSUMPTION')),
      line_id text references production.lines(id),
      work_order_id uuid references production.work_orders(id) on delete set null,
      range_from timestamptz,
      range_to timestamptz,
      trigger text not null check (trigger in ('MANUAL','SCHEDULED')),
      requested_by text not null,
      status text not null default 'RUNNING' check (status in ('RUNNING','SUCCESS','PARTIAL','FAILED')),
      fetched integer not null default 0,
      created integer not null default 0,
      updated integer not null default 0,
      unchanged integer not null default 0,
      rejected integer not null default 0,
      errors jsonb not null default '[]',
      error_count integer not null default 0,
      started_at timestamptz not null default now(),
      finished_at timestamptz,
      duration_ms integer
    );
    create index on production.sync_runs (started_at desc, id desc);
    create index on production.sync_runs (line_id, started_at desc);

    create table production.recipe_downloads (
      id bigint generated always as identity primary key,
      system text not null,
      mes_recipe_id text not null,
      mes_version text not null,
      recipe_id uuid not null references production.recipes(id),
      created_version boolean not null,
      downloaded_by text not null,
      downloaded_at timestamptz not null default now()
    );
    create index on production.recipe_downloads (downloaded_at desc, id desc);

    create table production.materials (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
      description text,
      type text,
      base_unit text,
      material_group text,
      gross_weight numeric,
      net_weight numeric,
      weight_unit text,
      is_marked_for_deletion boolean not null default false,
      source_system text not null,
      source_changed_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );

    create table production.labour_bookings (
      id bigint generated always as identity primary key,
      source_system text not null,
      external_id text not null,
      cost_center text not null,
      work_center text,
      line_id text references production.lines(id),
      work_order_number text,
      work_date date not null,
      hours numeric not null check (hours >= 0),
      rate_per_hour numeric,
      cost numeric,
      currency text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (source_system, external_id)
    );
    create index on production.labour_bookings (line_id, work_date);

    create table production.material_consumption (
      id bigint generated always as identity primary key,
      source_system text not null,
      external_id text not null,
      work_order_id uuid not null references production.work_orders(id) on delete cascade,
      material_id text not null,
      quantity numeric not null check (quantity >= 0),
      unit text not null,
      lot text,
      consumed_at timestamptz not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (source_system, external_id)
    );
    create index on production.material_consumption (work_order_id);

    -- Order status reports to the MES: written in the same transaction as the local change, sent by a job,
    -- retried until the MES accepts. The idempotency key travels with every attempt.
    create table production.outbound_updates (
      id uuid primary key default gen_random_uuid(),
      idempotency_key text not null unique,
      system text not null,
      work_order_id uuid not null references production.work_orders(id) on delete cascade,
      work_order_number text not null,
      line_id text not null references production.lines(id),
      status text not null check (status in ('PLANNED','ACTIVE','COMPLETED','CANCELLED')),
      actual_quantity integer not null check (actual_quantity >= 0),
      actual_start timestamptz,
      actual_end timestamptz,
      state text not null default 'PENDING' check (state in ('PENDING','SENT','FAILED')),
      attempts integer not null default 0,
      last_error text,
      last_attempt_at timestamptz,
      duplicate boolean not null default false,
      requested_by text not null,
      created_at timestamptz not null default now(),
      sent_at timestamptz
    );
    create index outbound_updates_open on production.outbound_updates (created_at) where state <> 'SENT';
    create index on production.outbound_updates (work_order_id, created_at desc);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table if exists production.outbound_updates, production.material_consumption, production.labour_bookings,
      production.materials, production.recipe_downloads, production.sync_runs;
  `.execute(db);
}
