import { sql, type OrderByExpression, type SelectQueryBuilder } from 'kysely';
import { afterCursor, encodeCursor, readPage, toConnection, type Connection, type PageArgs } from '../pagination.ts';

/**
 * Runs a filtered query as one keyset page: the caller builds the WHERE, this adds cursor, order and limit,
 * and a lazy count. `sortCol`/`idCol` are column references as the query sees them (e.g. 'plannedStart', 'id').
 * The cursor carries Postgres' own text of both keys: a timestamp keeps its microseconds (a JS Date would cut
 * them to milliseconds and the next page would repeat or skip rows), and Postgres casts the text back.
 */
export async function pageOf<Row extends object, DB = unknown, TB extends keyof DB = keyof DB>(
  query: SelectQueryBuilder<DB, TB, Row>,
  args: PageArgs,
  opts: { sortCol?: string; idCol?: string; desc?: boolean } = {},
): Promise<Connection<Row>> {
  const page = readPage(args);
  const sortCol = opts.sortCol ?? 'id';
  const idCol = opts.idCol ?? 'id';
  const dir = opts.desc ? 'desc' : 'asc';
  let q = query.select([
    sql<string>`${sql.ref(sortCol)}::text`.as('pageKey'),
    sql<string>`${sql.ref(idCol)}::text`.as('pageId'),
  ]) as SelectQueryBuilder<DB, TB, Row & PageKeys>;
  if (page.after) q = q.where(afterCursor(page, sortCol, idCol, opts.desc));
  type Col = OrderByExpression<DB, TB, Row & PageKeys>;
  q = sortCol === idCol ? q.orderBy(sortCol as Col, dir) : q.orderBy(sortCol as Col, dir).orderBy(idCol as Col, dir);
  const rows = (await q.limit(page.limit + 1).execute()) as (Row & PageKeys)[];
  const count = () =>
    query
      .clearSelect()
      .clearOrderBy()
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow()
      .then((r) => Number((r as { n: string | number | bigint }).n));
  return toConnection<Row & PageKeys>(rows, page, (r) => encodeCursor(r.pageKey, r.pageId), count);
}

interface PageKeys {
  pageKey: string;
  pageId: string;
}

/** Groups rows by a key in the order of `keys`, for DataLoader batch functions. */
export function groupBy<K, R>(keys: readonly K[], rows: R[], keyOf: (r: R) => K): R[][] {
  const m = new Map<K, R[]>();
  for (const r of rows) {
    const k = keyOf(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return keys.map((k) => m.get(k) ?? []);
}

/** One row per key (or null), in the order of `keys`. */
export function byKey<K, R>(keys: readonly K[], rows: R[], keyOf: (r: R) => K): (R | null)[] {
  const m = new Map<K, R>();
  for (const r of rows) m.set(keyOf(r), r);
  return keys.map((k) => m.get(k) ?? null);
}

/** GraphQL sends explicit nulls for omitted nullable inputs; an update sets only the fields that were given. */
export function changes<T extends object>(input: T): { [K in keyof T]?: NonNullable<T[K]> } {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== null)) as {
    [K in keyof T]?: NonNullable<T[K]>;
  };
}
