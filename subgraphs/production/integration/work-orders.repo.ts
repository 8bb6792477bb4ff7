import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import type { ScheduleRecord } from '../../../lib/connectors/mes/types.ts';
import type { Counts } from './shared.repo.ts';

/** Work orders from the schedules of the MES or the ERP. */

/**
 * One statement per batch: update the orders that exist and differ, insert the ones that do not exist.
 * Actual quantity/start/end are kept when the upstream sends none (an operator may have reported them).
 */
export async function upsertWorkOrders(db: Db, rows: ScheduleRecord[], source: string): Promise<Counts> {
  if (!rows.length) return { created: 0, updated: 0 };
  const col = <K extends keyof ScheduleRecord>(k: K) => rows.map((r) => r[k]);
  const iso = (k: 'plannedStart' | 'plannedEnd' | 'actualStart' | 'actualEnd') =>
    rows.map((r) => r[k]?.toISOString() ?? null);
  const { rows: out } = await sql<{ created: number; updated: number }>`
    with input as (
      select i.*, r.id as recipe_id
      from unnest(${col('number')}::text[], ${col('lineId')}::text[], ${col('productId')}::text[],
                  ${col('recipeCode')}::text[],
                  ${iso('plannedStart')}::timestamptz[], ${iso('plannedEnd')}::timestamptz[],
                  ${col('plannedQuantity')}::int[],
                  ${col('actualQuantity')}::int[], ${iso('actualStart')}::timestamptz[],
                  ${iso('actualEnd')}::timestamptz[],
                  ${col('status')}::text[], ${col('priority')}::smallint[])
        as i(number, line_id, product_id, recipe_code, planned_start, planned_end, planned_quantity, actual_quantity,
          actual_start, actual_end, status, priority)
      left join lateral (select id from production.recipes where code = i.recipe_code order by version desc limit 1) r
        on i.recipe_code is not null
    ),
    upd as (
      update production.work_orders w set
        line_id = i.line_id, product_id = i.product_id, recipe_id = coalesce(i.recipe_id, w.recipe_id),
        planned_start = i.planned_start, planned_end = i.planned_end, planned_quantity = i.planned_quantity,
        actual_quantity = coalesce(i.actual_quantity, w.actual_quantity),
        actual_start = coalesce(i.actual_start, w.actual_start),
        actual_end = coalesce(i.actual_end, w.actual_end), status = i.status, priority = i.priority,
        source = ${source}, updated_at = now()
      from input i
      where w.number = i.number
        and (w.line_id, w.product_id, w.recipe_id, w.planned_start, w.planned_end, w.planned_quantity,
            w.actual_quantity, w.actual_start, w.actual_end, w.status, w.priority, w.source)
            is distinct from
            (i.line_id, i.product_id, coalesce(i.recipe_id, w.recipe_id), i.planned_start, i.planned_end,
             i.planned_quantity,
             coalesce(i.actual_quantity, w.actual_quantity), coalesce(i.actual_start, w.actual_start),
             coalesce(i.actual_end, w.actual_end),
             i.status, i.priority::smallint, ${source}::text)
      returning 1
    ),
    ins as (
      insert into production.work_orders (number, line_id, product_id, recipe_id, planned_start, planned_end,
        planned_quantity, actual_quantity, actual_start, actual_end, status, priority, source)
      select number, line_id, product_id, recipe_id, planned_start, planned_end, planned_quantity,
        coalesce(actual_quantity, 0), actual_start, actual_end, status, priority, ${source}
      from input i where not exists (select 1 from production.work_orders w where w.number = i.number)
      on conflict (number) do nothing
      returning 1
    )
    select (select count(*)::int from ins) as created, (select count(*)::int from upd) as updated`.execute(db);
  return out[0]!;
}
