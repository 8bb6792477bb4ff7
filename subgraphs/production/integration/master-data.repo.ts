import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import { inList } from '../../../lib/db/index.ts';
import { pageOf } from '../../../lib/db/page.ts';
import type { ScopeFilter } from '../../../lib/auth/scope.ts';
import type { PageArgs } from '../../../lib/pagination.ts';
import type { LabourCostRecord, MaterialRecord } from '../../../lib/connectors/erp/types.ts';
import { idb } from './tables.ts';
import type { Counts } from './shared.repo.ts';

/** Master data from the ERP: the material master and labour bookings. */

// ---- materials
export async function upsertMaterials(db: Db, rows: MaterialRecord[], system: string): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const c = <K extends keyof MaterialRecord>(k: K) => rows.map((r) => r[k]);
  // The change time is carried along but is no reason to write on its own.
  const { rows: out } = await sql<{ inserted: boolean }>`
    insert into production.materials as m (id, description, type, base_unit, material_group, gross_weight, net_weight,
      weight_unit, is_marked_for_deletion, source_changed_at, source_system)
    select *, ${system} from unnest(${c('id')}::text[], ${c('description')}::text[], ${c('type')}::text[],
      ${c('baseUnit')}::text[], ${c('group')}::text[],
      ${c('grossWeight')}::numeric[], ${c('netWeight')}::numeric[], ${c('weightUnit')}::text[],
      ${c('isMarkedForDeletion')}::boolean[],
      ${rows.map((r) => r.changedAt?.toISOString() ?? null)}::timestamptz[])
    on conflict (id) do update set
      description = excluded.description, type = excluded.type, base_unit = excluded.base_unit,
      material_group = excluded.material_group, gross_weight = excluded.gross_weight,
      net_weight = excluded.net_weight, weight_unit = excluded.weight_unit,
      is_marked_for_deletion = excluded.is_marked_for_deletion, source_changed_at = excluded.source_changed_at,
      source_system = excluded.source_system, updated_at = now()
    where (m.description, m.type, m.base_unit, m.material_group, m.gross_weight, m.net_weight, m.weight_unit,
        m.is_marked_for_deletion, m.source_system)
      is distinct from (excluded.description, excluded.type, excluded.base_unit, excluded.material_group,
        excluded.gross_weight, excluded.net_weight, excluded.weight_unit, excluded.is_marked_for_deletion,
        excluded.source_system)
    returning (xmax = 0) as inserted`.execute(db);
  return { created: out.filter((x) => x.inserted).length, updated: out.filter((x) => !x.inserted).length };
}

export function listMaterials(db: Db, f: { search?: string | null; includeDeleted?: boolean | null }, page: PageArgs) {
  let q = idb(db).selectFrom('production.materials').selectAll();
  if (f.search)
    q = q.where((eb) => eb.or([eb('id', 'ilike', `%${f.search}%`), eb('description', 'ilike', `%${f.search}%`)]));
  if (!f.includeDeleted) q = q.where('isMarkedForDeletion', '=', false);
  return pageOf(q, page);
}

// ---- labour
export async function upsertLabour(db: Db, rows: LabourCostRecord[], system: string): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const c = <K extends keyof LabourCostRecord>(k: K) => rows.map((r) => r[k]);
  const { rows: out } = await sql<{ inserted: boolean }>`
    insert into production.labour_bookings as b (source_system, external_id, cost_center, work_center, line_id,
      work_order_number, work_date, hours, rate_per_hour, cost, currency)
    select ${system}, * from unnest(${c('externalId')}::text[], ${c('costCenter')}::text[], ${c('workCenter')}::text[],
      ${c('lineId')}::text[], ${c('workOrderNumber')}::text[],
      ${c('workDate')}::date[], ${c('hours')}::numeric[], ${c('ratePerHour')}::numeric[], ${c('cost')}::numeric[],
      ${c('currency')}::text[])
    on conflict (source_system, external_id) do update set
      cost_center = excluded.cost_center, work_center = excluded.work_center, line_id = excluded.line_id,
      work_order_number = excluded.work_order_number,
      work_date = excluded.work_date, hours = excluded.hours, rate_per_hour = excluded.rate_per_hour,
      cost = excluded.cost, currency = excluded.currency, updated_at = now()
    where (b.cost_center, b.work_center, b.line_id, b.work_order_number, b.work_date, b.hours, b.rate_per_hour, b.cost,
        b.currency)
      is distinct from (excluded.cost_center, excluded.work_center, excluded.line_id, excluded.work_order_number,
        excluded.work_date, excluded.hours, excluded.rate_per_hour, excluded.cost, excluded.currency)
    returning (xmax = 0) as inserted`.execute(db);
  return { created: out.filter((x) => x.inserted).length, updated: out.filter((x) => !x.inserted).length };
}

export interface LabourFilter {
  lineId?: string | null;
  costCenter?: string | null;
  from?: string | null;
  to?: string | null;
}
export function listLabour(db: Db, f: LabourFilter, scope: ScopeFilter, page: PageArgs) {
  let q = idb(db).selectFrom('production.labourBookings').selectAll();
  if (f.lineId) q = q.where('lineId', '=', f.lineId);
  if (f.costCenter) q = q.where('costCenter', '=', f.costCenter);
  if (f.from) q = q.where('workDate', '>=', f.from);
  if (f.to) q = q.where('workDate', '<', f.to);
  if (scope.lineIds) q = q.where('lineId', 'in', inList(scope.lineIds));
  return pageOf(q, page, { sortCol: 'workDate', idCol: 'id' });
}
