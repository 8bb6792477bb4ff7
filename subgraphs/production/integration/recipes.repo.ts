import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import { idb } from './tables.ts';

/** Recipes from the MES: the latest version of a recipe and the downloads that brought them. */

export const latestRecipe = (db: Db, code: string) =>
  db
    .selectFrom('production.recipes')
    .selectAll()
    .where('code', '=', code)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();

export const insertRecipeDownload = (
  db: Db,
  r: {
    system: string;
    mesRecipeId: string;
    mesVersion: string;
    recipeId: string;
    createdVersion: boolean;
    downloadedBy: string;
  },
) => idb(db).insertInto('production.recipeDownloads').values(r).returningAll().executeTakeFirstOrThrow();

export function listRecipeDownloads(db: Db, f: { mesRecipeId?: string | null }, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db)
    .selectFrom('production.recipeDownloads as d')
    .innerJoin('production.recipes as r', 'r.id', 'd.recipeId')
    .selectAll('d');
  if (f.mesRecipeId) q = q.where('d.mesRecipeId', '=', f.mesRecipeId);
  if (scope.lineIds)
    q = q.where((eb) => eb.or([eb('r.lineId', 'is', null), eb('r.lineId', 'in', inList(scope.lineIds!))]));
  return pageOf(q, page, { sortCol: 'd.downloadedAt', idCol: 'd.id', desc: true });
}
