/**
 * MES/ERP schedule sync, end to end: N work orders from the REST MES fake and from the SAP OData fake, each
 * pulled by `syncSchedules` through the gateway (JWT, production subgraph, connector, paging, batched upserts
 * into Postgres), then the same sync again with nothing changed. The fakes run in this process (they share its
 * CPU, so the figures include serving the upstream). Writes of the re-sync are counted twice: the run's own
 * created/updated counts and the work order rows whose xmin is newer than a transaction id taken just before.
 */
import { sql } from 'kysely';
import type { BenchOptions } from '../run.ts';
import { HubConfigSchema } from '../../lib/config/hub.ts';
import { MesConfigSchema } from '../../lib/config/mes.ts';
import { ErpConfigSchema } from '../../lib/config/erp.ts';
import { signUserToken } from '../../lib/auth/tokens.ts';
import { startAll } from '../../app/start-all.ts';
import { settingsOf } from '../../lib/config/settings.ts';
import { openDatabase } from '../../lib/db/open.ts';
import { BENCH_INTERNAL_SECRET, BENCH_JWT_SECRET, createBenchDatabase, dropBenchDatabase } from '../lib/env.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';
import { writeSummary } from '../lib/summary.ts';
import { makeOrders, startRestMes } from '../../test/fakes/mes-rest.ts';
import { makeSapOrders, startSap } from '../../test/fakes/sap-odata.ts';

const say = (s = '') => console.log(s);
const T0 = new Date(Date.UTC(2031, 0, 1));

export async function run(o: BenchOptions): Promise<void> {
  const n = o.quick ? 2_000 : 10_000;
  const dbName = 'hub_bench_mes_sync';
  const url = await createBenchDatabase(dbName);
  const mes = await startRestMes();
  const sap = await startSap();
  const db = await openDatabase(url, 10);
  try {
    const settings = settingsOf({
      // Syncs are asked for through the gateway here; no scheduled job may run beside them.
      hub: HubConfigSchema.parse({ gateway: { host: '127.0.0.1', port: 0 }, jobs: { enabled: false } }),
      mes: MesConfigSchema.parse({
        mes: {
          systemType: 'rest',
          name: 'BENCH-MES',
          lines: ['LINE-R'],
          connection: {
            baseUrl: mes.url,
            auth: {
              type: 'oauth2',
              tokenUrl: `${mes.url}/oauth/token`,
              clientId: mes.clientId,
              clientSecret: mes.clientSecret,
            },
          },
          sync: { autoSyncEnabled: false },
        },
      }).mes!,
      erp: ErpConfigSchema.parse({
        erp: {
          systemType: 'sap_odata',
          name: 'BENCH-S4',
          lineMap: { L01: 'LINE-S' },
          connection: { baseUrl: sap.url, auth: { type: 'basic', username: sap.user, password: sap.password } },
          sap: { plant: '1710', pageSize: 5000 },
          sync: { autoSyncEnabled: false },
        },
      }).erp!,
    });
    const hub = await startAll(settings, db, {
      jwtSecret: BENCH_JWT_SECRET,
      internalSecret: BENCH_INTERNAL_SECRET,
      generated: false,
    });
    try {
      await sql`insert into production.sites (id, name) values ('SITE-B', 'Bench site');
        insert into production.lines (id, site_id, name)
          values ('LINE-R', 'SITE-B', 'REST line'), ('LINE-S', 'SITE-B', 'SAP line')`.execute(db);
      // Orders every 15 minutes (an hour long), so 10,000 fit in one sync range (at most 366 days).
      for (const [i, x] of makeOrders('LINE-R', n, T0, ['P-A', 'P-B', 'P-C']).entries()) {
        x.PlannedStart = new Date(T0.getTime() + i * 900_000).toISOString();
        x.PlannedEnd = new Date(T0.getTime() + i * 900_000 + 3_600_000).toISOString();
        mes.orders.set(x.OrderNumber, x);
      }
      for (const x of makeSapOrders('L01', n, T0)) sap.orders.set(String(x.ManufacturingOrder), x);
      const token = await signUserToken(BENCH_JWT_SECRET, { sub: 'bench', role: 'engineer' });
      const range = {
        from: T0.toISOString(),
        to: new Date(T0.getTime() + n * 900_000 + 30 * 86_400_000).toISOString(),
      };
      const syncLine = async (line: string) => {
        const t = performance.now();
        const res = await fetch(hub.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({
            query:
              'mutation($l: ID!, $f: DateTime!, $t: DateTime!) { syncSchedules(lineId: $l, from: $f, to: $t) { ' +
              'status fetched created updated unchanged durationMs } }',
            variables: { l: line, f: range.from, t: range.to },
          }),
        });
        const body = (await res.json()) as {
          data?: { syncSchedules: Record<string, number | string> };
          errors?: unknown;
        };
        if (!body.data) throw new Error(`sync failed: ${JSON.stringify(body.errors)}`);
        return { seconds: (performance.now() - t) / 1000, ...body.data.syncSchedules } as {
          seconds: number;
          status: string;
          fetched: number;
          created: number;
          updated: number;
          unchanged: number;
          durationMs: number;
        };
      };
      // Row versions written after a point: every inserted or updated row carries its writer's xid in xmin.
      // (pg_stat's tuple counters would do too, but pooled backends flush them up to 10 s late.)
      const mark = async () =>
        Number((await sql<{ x: string }>`select (txid_current() % 4294967296)::text as x`.execute(db)).rows[0]!.x);
      const writtenSince = async (x: number) =>
        (
          await sql<{
            n: number;
          }>`select count(*)::int as n from production.work_orders where xmin::text::bigint > ${x}`.execute(db)
        ).rows[0]!.n;

      say(`mes-sync: ${n} work orders per source, synced through the gateway into a fresh database`);
      const rest = await syncLine('LINE-R');
      const restMark = await mark();
      const restAgain = await syncLine('LINE-R');
      const restAgainWrites = await writtenSince(restMark);
      const sapFirst = await syncLine('LINE-S');
      const sapMark = await mark();
      const sapAgain = await syncLine('LINE-S');
      const sapAgainWrites = await writtenSince(sapMark);
      for (const r of [rest, sapFirst])
        if (r.status !== 'SUCCESS' || r.created !== n)
          throw new Error(`first sync did not create ${n}: ${JSON.stringify(r)}`);
      const count = await sql<{ n: number }>`select count(*)::int as n from production.work_orders`.execute(db);
      if (count.rows[0]!.n !== 2 * n) throw new Error(`expected ${2 * n} work orders, found ${count.rows[0]!.n}`);

      const row = (name: string, r: typeof rest, writes: number | string) => [
        name,
        r.status,
        r.fetched,
        r.created,
        r.updated,
        r.unchanged,
        r.seconds.toFixed(2),
        Math.round(r.fetched / r.seconds),
        writes,
      ];
      say(
        table(
          ['sync', 'status', 'fetched', 'created', 'updated', 'unchanged', 'seconds', 'orders/s', 'row writes'],
          [
            row('REST MES, first', rest, rest.created + rest.updated),
            row('REST MES, unchanged', restAgain, restAgainWrites),
            row('SAP OData, first', sapFirst, sapFirst.created + sapFirst.updated),
            row('SAP OData, unchanged', sapAgain, sapAgainWrites),
          ],
        ),
      );
      const resyncWrites =
        restAgainWrites + sapAgainWrites + restAgain.created + restAgain.updated + sapAgain.created + sapAgain.updated;
      const file = writeResult('mes-sync', {
        orders: n,
        rest,
        restAgain,
        restAgainWrites,
        sap: sapFirst,
        sapAgain,
        sapAgainWrites,
        resyncWrites,
        upstreamCalls: { rest: mes.calls, sap: sap.calls },
      });
      say(`\nfull figures: ${file}`);
      const line = resultLine('mes-sync', {
        orders: String(n),
        seconds: rest.seconds.toFixed(2),
        sap_seconds: sapFirst.seconds.toFixed(2),
        resync_writes: String(resyncWrites),
      });
      const summary = await writeSummary('mes-sync', o, [line], {
        orders: n,
        restSeconds: rest.seconds,
        sapSeconds: sapFirst.seconds,
        restResyncSeconds: restAgain.seconds,
        sapResyncSeconds: sapAgain.seconds,
        resyncWrites,
      });
      say(`summary (commit it when quoted): ${summary}`);
      say(line);
    } finally {
      await hub.stop();
    }
  } finally {
    await db.destroy();
    await mes.close();
    await sap.close();
    await dropBenchDatabase(dbName);
  }
}
