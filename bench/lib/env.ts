import pg from 'pg';

/** Fixed secrets: the bench is reproducible and never touches a real deployment's keys. */
export const BENCH_JWT_SECRET = 'bench-user-jwt-secret-0123456789abcdef';
export const BENCH_INTERNAL_SECRET = 'bench-internal-secret-0123456789abcdef';

/** The Postgres server to create the throwaway bench database on (trust auth locally). */
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh database per run (its name is ours, so no quoting issues), dropped when the bench ends. */
export async function createBenchDatabase(name: string): Promise<string> {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  return databaseUrl(name);
}

export async function dropBenchDatabase(name: string): Promise<void> {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** Server process ids of the Postgres connections to `name` (the subgraphs' pool), to account their CPU. */
export async function postgresBackendPids(name: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]);
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}
