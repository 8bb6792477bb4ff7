import { sql, type Kysely } from 'kysely';

/**
 * Status rows saved under names that changed: HTTP endpoints without a name of their own were named by their raw URL
 * (credentials included) and are now named by the masked one; ingest workers were named by host and are now named
 * by host and MQTT client id. The old rows would stay in httpEndpoints and telemetrySources for ever, frozen (and
 * the endpoints' with the credentials). Both tables are status the running workers rewrite every few seconds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`delete from iot.http_endpoints where name ~ '^https?://' and position('***' in name) = 0`.execute(db);
  await sql`delete from iot.telemetry_sources where worker !~ '/'`.execute(db);
}

export async function down(): Promise<void> {}
