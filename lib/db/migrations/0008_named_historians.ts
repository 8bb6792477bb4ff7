import { sql, type Kysely } from 'kysely';

/**
 * Tag mappings name the historian they read (historian.yml's name, several PI servers in one plant) and keep the
 * historian's own handle for the tag (PI WebId, AVEVA FQN) as resolved when the mapping was made. Both stay null for
 * mappings made by historian system alone (as before).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table historian.tag_mappings add column historian text, add column ref text;
    create unique index tag_mappings_historian_tag on historian.tag_mappings (historian, tag)
      where historian is not null;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop index if exists historian.tag_mappings_historian_tag;
    alter table historian.tag_mappings drop column if exists historian, drop column if exists ref;
  `.execute(db);
}
