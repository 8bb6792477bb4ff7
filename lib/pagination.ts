import { sql, type Expression, type SqlBool } from 'kysely';
import { badInput } from './errors.ts';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

export interface PageArgs {
  first?: number | null;
  after?: string | null;
}

export interface Page {
  limit: number;
  /** The (sort key, id) of the last row of the previous page. */
  after: [string | number, string | number] | null;
}

/** Validates `first`/`after`; a cursor is opaque to clients: base64url of the last row's (sort key, id). */
export function readPage(args: PageArgs): Page {
  const limit = args.first ?? DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE}`, { argument: 'first' });
  }
  if (!args.after) return { limit, after: null };
  try {
    const v = JSON.parse(Buffer.from(args.after, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2) return { limit, after: v as [string, string] };
  } catch {
    /* fall through */
  }
  throw badInput('after is not a cursor this API issued', { argument: 'after' });
}

export const encodeCursor = (key: unknown, id: unknown) =>
  Buffer.from(JSON.stringify([key instanceof Date ? key.toISOString() : key, id])).toString('base64url');

/**
 * Keyset condition `(sortCol, idCol) > (k, id)` (or `<` descending): uses the index and never skips or repeats
 * rows when others are inserted meanwhile, unlike OFFSET.
 */
export function afterCursor(page: Page, sortCol: string, idCol: string, desc = false): Expression<SqlBool> {
  const [k, id] = page.after!;
  return desc
    ? sql<SqlBool>`(${sql.ref(sortCol)}, ${sql.ref(idCol)}) < (${k}, ${id})`
    : sql<SqlBool>`(${sql.ref(sortCol)}, ${sql.ref(idCol)}) > (${k}, ${id})`;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  /** Resolved only when asked for: GraphQL's default resolver calls it. */
  totalCount: () => Promise<number>;
}

/** Rows fetched with `limit + 1` become a Connection; the extra row only tells there is a next page. */
export function toConnection<T>(
  rows: T[],
  page: Page,
  cursorOf: (row: T) => string,
  count: () => Promise<number>,
): Connection<T> {
  const hasNextPage = rows.length > page.limit;
  const nodes = hasNextPage ? rows.slice(0, page.limit) : rows;
  const edges = nodes.map((node) => ({ cursor: cursorOf(node), node }));
  return {
    edges,
    nodes,
    pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    totalCount: count,
  };
}

// Codegen maps every *Connection GraphQL type here; the row type is checked where the connection is built.
export type AnyConnection = Connection<unknown>;

/** A page with nothing on it: what a token sees of lists outside its scope entirely. */
export const emptyConnection = <T>(): Connection<T> => ({
  edges: [],
  nodes: [],
  pageInfo: { hasNextPage: false, endCursor: null },
  totalCount: async () => 0,
});
