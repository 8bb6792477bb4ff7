import { sql, type Kysely } from 'kysely';

/**
 * A mapping keeps its tag's type as the historian gave it (PI PointType, AVEVA TagType), so reads know a string tag
 * without asking again. A dead letter may carry the identity of what it refuses (a historian tag and timestamp):
 * a page read again after a restart then refuses its values once, not once per read.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table historian.tag_mappings add column tag_type text;
    alter table quality.dead_letters add column dedupe_key text;
    create unique index dead_letters_dedupe_key on quality.dead_letters (dedupe_key) where dedupe_key is not null;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop index if exists quality.dead_letters_dedupe_key;
    alter table quality.dead_letters drop column if exists dedupe_key;
    alter table historian.tag_mappings drop column if exists tag_type;
  `.execute(db);
}
