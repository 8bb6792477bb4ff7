import { sql, type Kysely } from 'kysely';

/**
 * The order status outbox without a transaction around the MES call: a sender claims a report for a lease
 * (`claimed_until`, `claim_token`), calls the MES with no transaction open and records the outcome in a second
 * short transaction. A sender that dies mid-call leaves a claim that expires, and the report is sent again (the
 * MES dedupes by the idempotency key). Transient failures keep a report PENDING and move `next_attempt_at` out
 * (capped backoff, no attempt limit); only a definitive refusal by the MES ends it, as REJECTED, which an
 * engineer may re-queue. Reports an earlier version gave up on (FAILED) were never refused by the MES: they are
 * PENDING again. Also: production.erp_postings, the idempotency keys of goods issues posted through the hub.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table production.outbound_updates
      add column next_attempt_at timestamptz not null default now(),
      add column claimed_until timestamptz,
      add column claim_token uuid,
      add column rejected_at timestamptz;
    alter table production.outbound_updates drop constraint outbound_updates_state_check;
    update production.outbound_updates set state = 'PENDING' where state = 'FAILED';
    alter table production.outbound_updates add constraint outbound_updates_state_check
      check (state in ('PENDING','SENT','REJECTED'));
    create index outbound_updates_due on production.outbound_updates (next_attempt_at) where state = 'PENDING';

    -- Goods issues posted to the ERP through the hub, by the caller's idempotency key. A goods issue is not
    -- idempotent in the ERP: the key is reserved (POSTING) before the call, so a retry of the mutation never posts
    -- twice; UNCERTAIN is a call whose outcome is unknown (timeout, 5xx), which only a look in the ERP can settle.
    create table production.erp_postings (
      idempotency_key text primary key,
      system text not null,
      work_order_id uuid not null references production.work_orders(id) on delete cascade,
      material_id text not null,
      quantity numeric not null check (quantity > 0),
      unit text not null,
      lot text,
      state text not null default 'POSTING' check (state in ('POSTING','POSTED','UNCERTAIN')),
      document_id text,
      consumption_id bigint references production.material_consumption(id) on delete set null,
      last_error text,
      requested_by text not null,
      created_at timestamptz not null default now()
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table if exists production.erp_postings;
    drop index if exists production.outbound_updates_due;
    alter table production.outbound_updates drop constraint outbound_updates_state_check;
    update production.outbound_updates set state = 'FAILED' where state = 'REJECTED';
    alter table production.outbound_updates add constraint outbound_updates_state_check
      check (state in ('PENDING','SENT','FAILED'));
    alter table production.outbound_updates drop column next_attempt_at, drop column claimed_until,
      drop column claim_token, drop column rejected_at;
  `.execute(db);
}
