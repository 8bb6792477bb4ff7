import { sql, type Kysely } from 'kysely';

/**
 * The foundation data model: one schema per subgraph plus telemetry and audit.
 * Hierarchy ids (site, area, line, machine, product, sensor) are the plant's own codes ("LINE-01"),
 * immutable, so MQTT topics, CSV files and token scopes can name them; generated ids are uuids.
 * Foreign keys cross schemas on purpose: one database, and a sensor on an unknown machine is an input error.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create schema if not exists production;
    create schema if not exists iot;
    create schema if not exists historian;
    create schema if not exists quality;
    create schema if not exists telemetry;
    create schema if not exists audit;

    create table production.sites (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
      name text not null,
      timezone text not null default 'UTC',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create table production.areas (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
      site_id text not null references production.sites(id),
      name text not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create table production.lines (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
      site_id text not null references production.sites(id),
      area_id text references production.areas(id),
      name text not null,
      is_active boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index on production.lines (site_id);
    create table production.machines (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
      line_id text not null references production.lines(id),
      name text not null,
      type text,
      ideal_cycle_time_seconds double precision check (ideal_cycle_time_seconds > 0),
      is_active boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index on production.machines (line_id);
    create table production.products (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
      name text not null,
      family text,
      sku text unique,
      standard_cycle_time_seconds double precision check (standard_cycle_time_seconds > 0),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create table production.recipes (
      id uuid primary key default gen_random_uuid(),
      code text not null,
      version integer not null check (version > 0),
      product_id text not null references production.products(id),
      line_id text references production.lines(id),
      target_cycle_time_seconds double precision not null check (target_cycle_time_seconds > 0),
      setup_time_seconds double precision not null default 0 check (setup_time_seconds >= 0),
      teardown_time_seconds double precision not null default 0 check (teardown_time_seconds >= 0),
      parameters jsonb not null default '{}',
      is_active boolean not null default true,
      created_at timestamptz not null default now(),
      unique (code, version)
    );
    create table production.work_orders (
      id uuid primary key default gen_random_uuid(),
      number text not null unique,
      line_id text not null references production.lines(id),
      recipe_id uuid references production.recipes(id),
      product_id text references production.products(id),
      planned_start timestamptz not null,
      planned_end timestamptz not null,
      actual_start timestamptz,
      actual_end timestamptz,
      planned_quantity integer not null check (planned_quantity >= 0),
      actual_quantity integer not null default 0 check (actual_quantity >= 0),
      status text not null default 'PLANNED' check (status in ('PLANNED','ACTIVE','COMPLETED','CANCELLED')),
      priority smallint not null default 5 check (priority between 1 and 10),
      source text not null default 'manual',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (planned_end > planned_start),
      check (actual_end is null or actual_start is null or actual_end >= actual_start)
    );
    create index on production.work_orders (line_id, planned_start);
    create table production.shifts (
      id uuid primary key default gen_random_uuid(),
      line_id text not null references production.lines(id),
      shift_date date not null,
      shift_number smallint not null check (shift_number between 1 and 9),
      operator_id text not null,
      operator_name text,
      role text not null default 'OPERATOR',
      starts_at timestamptz not null,
      ends_at timestamptz not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (ends_at > starts_at),
      unique (line_id, shift_date, shift_number, operator_id)
    );
    create index on production.shifts (line_id, starts_at);

    create table iot.sensors (
      id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$'),
      name text not null,
      type text not null,
      unit text not null,
      machine_id text not null references production.machines(id),
      protocol text not null check (protocol in ('MQTT','SPARKPLUG','HTTP','HISTORIAN','IMPORT')),
      topic text,
      endpoint text,
      poll_interval_seconds integer check (poll_interval_seconds > 0),
      min_expected double precision,
      max_expected double precision,
      is_active boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (min_expected is null or max_expected is null or min_expected <= max_expected)
    );
    create index on iot.sensors (machine_id);

    create table historian.tag_mappings (
      id uuid primary key default gen_random_uuid(),
      historian_system text not null check (historian_system in ('PI','WONDERWARE')),
      tag text not null,
      machine_id text not null references production.machines(id),
      signal_type text not null,
      unit text not null,
      scale_factor double precision not null default 1,
      value_offset double precision not null default 0,
      is_active boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (historian_system, tag)
    );
    create index on historian.tag_mappings (machine_id);
    create table historian.backfill_jobs (
      id uuid primary key default gen_random_uuid(),
      tag_mapping_id uuid not null references historian.tag_mappings(id),
      start_time timestamptz not null,
      end_time timestamptz not null,
      status text not null default 'PENDING' check (status in ('PENDING','RUNNING','COMPLETED','FAILED','CANCELLED')),
      points_fetched bigint not null default 0,
      points_imported bigint not null default 0,
      checkpoint timestamptz,
      created_by text,
      created_at timestamptz not null default now(),
      started_at timestamptz,
      completed_at timestamptz,
      error text,
      check (end_time > start_time)
    );
    create index on historian.backfill_jobs (tag_mapping_id, created_at);

    create table quality.range_rules (
      id uuid primary key default gen_random_uuid(),
      machine_id text not null references production.machines(id),
      sensor_id text references iot.sensors(id),
      signal_type text not null,
      min_value double precision not null,
      max_value double precision not null,
      unit text,
      action text not null default 'ALERT' check (action in ('ALERT','REJECT','DEGRADE')),
      is_active boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (min_value <= max_value)
    );
    create index on quality.range_rules (machine_id);
    create table quality.alerts (
      id bigint generated always as identity primary key,
      machine_id text not null references production.machines(id),
      sensor_id text references iot.sensors(id),
      type text not null check (type in ('OUT_OF_RANGE','DUPLICATE','GAP','STALE','SOURCE_QUALITY')),
      severity text not null default 'WARNING' check (severity in ('INFO','WARNING','CRITICAL')),
      ts timestamptz not null,
      metric text not null,
      value double precision,
      expected_min double precision,
      expected_max double precision,
      message text,
      acknowledged_at timestamptz,
      acknowledged_by text,
      created_at timestamptz not null default now()
    );
    create index alerts_open_by_machine on quality.alerts (machine_id, ts desc) where acknowledged_at is null;
    create index on quality.alerts (ts desc);

    -- One series per signal source (a sensor or a historian tag): readings stay narrow (int key).
    create table telemetry.series (
      id integer generated always as identity primary key,
      machine_id text not null references production.machines(id),
      signal text not null,
      unit text,
      sensor_id text unique references iot.sensors(id),
      tag_mapping_id uuid unique references historian.tag_mappings(id),
      check ((sensor_id is null) <> (tag_mapping_id is null))
    );
    create index on telemetry.series (machine_id);

    -- Narrow, time-partitioned, unique per (series, ts): a redelivered message is a no-op.
    create table telemetry.readings (
      series_id integer not null,
      ts timestamptz not null,
      value double precision not null,
      quality smallint not null default 100 check (quality between 0 and 100),
      source smallint not null,
      work_order_id uuid,
      shift_id uuid,
      recipe_id uuid,
      operator_id text,
      primary key (series_id, ts)
    ) partition by range (ts);
    create table telemetry.readings_default partition of telemetry.readings default;

    create table telemetry.rollup_1m (
      series_id integer not null, bucket timestamptz not null,
      n integer not null, sum double precision not null, min double precision not null, max double precision not null,
      primary key (series_id, bucket)
    );
    create table telemetry.rollup_1h (like telemetry.rollup_1m including all);
    create table telemetry.latest (
      series_id integer primary key, ts timestamptz not null, value double precision not null, quality smallint not null
    );

    -- Monthly partitions; the default partition takes what falls outside (very old backfills).
    create function telemetry.ensure_partitions(from_month date, to_month date) returns void
    language plpgsql as $$
    declare m date := date_trunc('month', from_month);
    begin
      while m <= to_month loop
        if to_regclass(format('telemetry.readings_%s', to_char(m, 'YYYY_MM'))) is null then
          execute format(
            'create table telemetry.readings_%s partition of telemetry.readings for values from (%L) to (%L)',
            to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
        end if;
        m := (m + interval '1 month')::date;
      end loop;
    end $$;
    select telemetry.ensure_partitions((now() - interval '12 months')::date, (now() + interval '3 months')::date);

    create table audit.log (
      id bigint generated always as identity primary key,
      at timestamptz not null default now(),
      actor text not null,
      roles text[] not null default '{}',
      service text not null,
      operation text not null,
      target text,
      outcome text not null check (outcome in ('SUCCESS','FAILURE')),
      error_code text,
      details jsonb not null default '{}',
      request_id text
    );
    create index on audit.log (at desc);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop schema if exists audit, telemetry, quality, historian, iot, production cascade`.execute(db);
}
