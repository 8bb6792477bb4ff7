import { log } from '../log.ts';
import { createDb, type Db } from './index.ts';
import { migrateToLatest } from './migrate.ts';

/** The pool every part of a process shares, migrated to the latest schema first (unless told not to). */
export async function openDatabase(
  url: string,
  poolSize: number,
  migrate = true,
  onQuery?: (sql: string) => void,
): Promise<Db> {
  const db = createDb(url, poolSize, onQuery);
  if (migrate) {
    const applied = await migrateToLatest(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
  }
  return db;
}
