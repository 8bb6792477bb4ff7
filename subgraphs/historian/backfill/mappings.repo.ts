import type { Db } from '../../../lib/db/index.ts';

/** The mappings a backfill names, by id or by tag on a historian. */
export function mappingsForBackfill(
  db: Db,
  by: { ids: readonly string[] } | { historian: string; tags: readonly string[] },
) {
  const q = db.selectFrom('historian.tagMappings').select(['id', 'tag', 'historian', 'ref', 'machineId', 'isActive']);
  return 'ids' in by
    ? q.where('id', 'in', [...by.ids]).execute()
    : q
        .where('historian', '=', by.historian)
        .where('tag', 'in', [...by.tags])
        .execute();
}
