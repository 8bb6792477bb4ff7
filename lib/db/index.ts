import pg from 'pg';
import { CamelCasePlugin, Kysely, PostgresDialect, type Logger } from 'kysely';
import type { Database } from './types.ts';
import { log } from '../log.ts';

export type Db = Kysely<Database>;
export type { Database };

// bigint (int8) and numeric come back as strings by default; counts and ids we expose fit in JS numbers
// or stay strings by design (alert ids), so only int8 counts are parsed where used.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

/** `onQuery` sees every statement's SQL (tests use it to prove batching). */
export function createDb(url: string, poolSize = 10, onQuery?: (sql: string) => void): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Every query has a ceiling: a stuck statement must not hold a request forever.
    statement_timeout: 30_000,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection can die (server restart, failover); pg then emits 'error' on the pool, which would
  // crash the process if unhandled. The pool replaces the connection; the next query reports any real outage.
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));
  // A connection lost while lent out (a query in flight) emits 'error' on its client, where the pool listens no more:
  // unhandled, it would end the process. The query in flight fails with the same error, and the pool discards the
  // client when it comes back.
  pool.on('connect', (client) => client.on('error', () => {}));
  const logQuery: Logger | undefined = onQuery
    ? (e) => {
        if (e.level === 'query') onQuery(e.query.sql);
      }
    : undefined;
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    plugins: [new CamelCasePlugin()],
    log: logQuery,
  });
  pools.set(db, { pool, log: logQuery });
  return db;
}

const pools = new WeakMap<Db, { pool: pg.Pool; log?: Logger }>();
const onClient = new WeakMap<pg.PoolClient, Db>();

/**
 * Lends one pooled connection both raw (for what Kysely cannot send: COPY) and as a Kysely bound to it, so both
 * can share one transaction. `fn` must end any transaction it opens. A connection that failed other than with a
 * SQL error (it may be broken) is discarded, not returned to the pool.
 */
export async function withPgClient<T>(db: Db, fn: (client: pg.PoolClient, db: Db) => Promise<T>): Promise<T> {
  const made = pools.get(db);
  if (!made) throw new Error('withPgClient needs a Db made by createDb (not a transaction)');
  const client = await made.pool.connect();
  let bound = onClient.get(client);
  if (!bound) {
    // Kysely "borrows" and "releases" this one client; the real release is ours, below.
    const lent = { query: client.query.bind(client), release: () => {} };
    bound = new Kysely<Database>({
      dialect: new PostgresDialect({
        pool: {
          connect: async () => lent as unknown as pg.PoolClient,
          end: async () => {},
          options: made.pool.options,
        },
      }),
      plugins: [new CamelCasePlugin()],
      log: made.log,
    });
    onClient.set(client, bound);
  }
  try {
    const result = await fn(client, bound);
    client.release();
    return result;
  } catch (err) {
    client.release(err instanceof pg.DatabaseError ? undefined : (err as Error));
    throw err;
  }
}

/**
 * Kysely's `where x in (...)` needs a non-empty list; an empty scope must match nothing, not fail.
 * '' can never be an id (every id column has a check that it starts with a letter or digit).
 */
export const inList = (ids: readonly string[]): string[] => (ids.length ? [...ids] : ['']);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Generated ids are uuids: anything else cannot match, and sending it to Postgres would fail the query (22P02). */
export const isUuid = (id: string): boolean => UUID.test(id);
export const uuids = (ids: readonly string[]): string[] => ids.filter(isUuid);
