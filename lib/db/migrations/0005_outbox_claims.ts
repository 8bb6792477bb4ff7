import { sql, type Kysely } from 'kysely';

/**
 * The order status outbox without a transaction around the MES call: a sender claims a report for a lease
 * (`claimed_until`, `claim_token`), calls the MES with no transaction open and records the outcome in a second
 * short transaction. A sender that dies mid-call leaves a claim that expires, and the report is sent again (the
 * MES dedupes by the idempotency key). Transient failures keep a report PENDING and move `next_attempt_at` out
 * (capped backoff, no attempt limit); only a definitive refusal by the MES ends it, as REJECTED, which an
 * engineer may re-queue. Reports an earlier version gave up on (FAILED) were never refused by the MES: they are
 * PENDING again.
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
    alter table production.outbound_updates add constraint outbound_updates_state_check check (state in ('PENDING','SENT','REJECTED'));
    create index outbound_updates_due on production.outbound_updates (next_attempt_at) where state = 'PENDING';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop index if exists production.outbound_updates_due;
    alter table production.outbound_updates drop constraint outbound_updates_state_check;
    update production.outbound_updates set state = 'FAILED' where state = 'REJECTED';
    alter table production.outbound_updates add constraint outbound_updates_state_check check (state in ('PENDING','SENT','FAILED'));
    alter table production.outbound_updates drop column next_attempt_at, drop column claimed_until, drop column claim_token, drop column rejected_at;
  `.execute(db);
}
