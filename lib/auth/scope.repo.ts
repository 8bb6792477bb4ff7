import { inList, type Db } from '../db/index.ts';
import type { Viewer } from './viewer.ts';

/** The lines and machines a site/line-scoped token may see, read from production's hierarchy. */
export async function loadScopedHierarchy(db: Db, viewer: Viewer) {
  let q = db
    .selectFrom('production.lines as l')
    .leftJoin('production.machines as m', 'm.lineId', 'l.id')
    .select(['l.id as lineId', 'l.siteId', 'm.id as machineId']);
  if (viewer.sites) q = q.where('l.siteId', 'in', inList(viewer.sites));
  if (viewer.lines) q = q.where('l.id', 'in', inList(viewer.lines));
  return q.execute();
}
