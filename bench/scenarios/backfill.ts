/**
 * Historian backfill, end to end: 1,000 PI tags × 10,000 values (`--quick`: × 1,000) served by the PI Web API fake
 * in its own process, read by the hub (`bin/hub.ts all`, its own process) through a backfill job started and
 * followed through the gateway (startBackfill, backfillProgress), through the connector's batches and the one
 * pipeline into telemetry.readings; the rows are counted and summed against the truth. Then, in the same run, the
 * limit: the same points in one binary COPY into the same table, emptied. CPU of hub, fake, Postgres and the bench
 * from /proc over each window; the hub's resident memory sampled every 250 ms.
 * Layout, method and caveats: bench/README.md, "backfill".
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { BenchOptions } from '../run.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { configureLog } from '../../lib/log.ts';
import { databaseUrl, dropBenchDatabase } from '../lib/env.ts';
import { onCleanup, startChild, tsxArgs } from '../lib/proc.ts';
import { cpuWindow, postgresPids, rssMiB, type CpuWindow } from '../lib/proc-stats.ts';
import { resultLine, table, writeResult } from '../lib/report.ts';
import { writeSummary } from '../lib/summary.ts';
import { f1, f2, HISTORIAN, int, say, shapeFor, sleep, STEP_MS, tagPath, truthSum } from '../lib/backfill/common.ts';
import { copyBaseline, pgOf } from '../lib/backfill/copy.ts';
import { gql, PROGRESS, type Progress, setupDatabase, START, startHub, writeConfig } from '../lib/backfill/hub.ts';
import { peakRssMiB, sampleRss } from '../lib/backfill/watch.ts';

const TAGS = 1000;
/**
 * Values per tag per call. The connector reads 100 tags a batch, so a batch answers up to 100 × maxCount values;
 * bench/README.md, "backfill", has the sizes tried and why this one. BENCH_PI_MAX_COUNT overrides it.
 */
const DEFAULT_MAX_COUNT = 1000;
const POLL_MS = 200;

export async function run(opts: BenchOptions): Promise<void> {
  const started = Date.now();
  const values = opts.quick ? 1000 : 10_000;
  const maxCount = Number(process.env.BENCH_PI_MAX_COUNT ?? DEFAULT_MAX_COUNT);
  const stored = process.env.BENCH_PI_STORED === '1';
  const shape = shapeFor(TAGS, values);
  const points = TAGS * values;
  const from = new Date(shape.start);
  const to = new Date(shape.start + values * STEP_MS);
  say(
    `backfill bench: ${int(points)} points (${int(TAGS)} PI tags × ${int(values)} values, one a second, ` +
      `${from.toISOString()} to ${to.toISOString()}), maxCount ${maxCount}, ${stored ? 'stored' : 'generated'} ` +
      `events in the fake, ${cpus().length} CPUs, node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  );

  configureLog({ level: process.env.LOG_LEVEL ?? 'warn' });
  const dbName = `oee_bench_${process.pid}`;
  onCleanup(() => dropBenchDatabase(dbName));
  const url = await setupDatabase(dbName);
  const pgc = new pg.Client({ connectionString: databaseUrl(dbName), application_name: 'oee-bench' });
  await pgc.connect();
  onCleanup(() => pgc.end());
  const q = async <T>(text: string, params: unknown[] = []) => (await pgc.query(text, params)).rows as T[];

  const [piNode, piArgs] = tsxArgs(fileURLToPath(new URL('../lib/backfill/pi-process.ts', import.meta.url)));
  const pi = await startChild('backfill-pi', piNode, piArgs, {
    env: {
      BENCH_TAGS: String(TAGS),
      BENCH_VALUES: String(values),
      BENCH_START: String(shape.start),
      BENCH_STORED: stored ? '1' : '0',
    },
  });
  const piPid = pi.proc.pid!;
  const port = await freePort();
  const config = writeConfig({ piUrl: String(pi.ready.url), tags: TAGS, maxCount, gatewayPort: port });
  const hub = await startHub(url, config.dir, port, pgc, TAGS);
  say(`setup took ${((Date.now() - started) / 1000).toFixed(1)} s (database, fake, hub, ${int(TAGS)} mappings)\n`);

  // The hub: one job over every tag, through the gateway, followed until it ends.
  await q('checkpoint');
  const rssAtStart = rssMiB(hub.pid);
  const groups = async () => ({
    hub: [hub.pid],
    fake: [piPid],
    ...pgOf(await postgresPids(dbName)),
    bench: [process.pid],
  });
  const meter = await cpuWindow(groups);
  const rss = sampleRss({ hub: hub.pid, fake: piPid });
  const t0 = performance.now();
  const job = await gql<{ startBackfill: { id: string } }>(hub, START, {
    i: { historian: HISTORIAN, tags: Array.from({ length: TAGS }, (_, i) => tagPath(i)), from, to },
  });
  const jobId = job.startBackfill.id;
  const timeline: { t: number; imported: number; fetched: number }[] = [];
  let last: Progress;
  for (;;) {
    last = (await gql<{ backfillProgress: Progress }>(hub, PROGRESS, { id: jobId })).backfillProgress;
    timeline.push({ t: (performance.now() - t0) / 1000, imported: last.pointsImported, fetched: last.pointsFetched });
    meter.tick();
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(last.status) && !last.running) break;
    if (hub.child.proc.exitCode !== null) throw new Error(`the hub exited; see ${hub.child.logFile}`);
    await sleep(POLL_MS);
  }
  const seconds = (performance.now() - t0) / 1000;
  const hubCpu = await meter.end();
  const memory = rss.stop();
  const hubPeak = peakRssMiB(hub.pid);
  const fakeStats = (await (await fetch(String(pi.ready.stats))).json()) as Record<string, unknown>;
  const [jobRow] = await q<{ queued_s: number; run_s: number }>(
    `select extract(epoch from started_at - created_at)::float8 as queued_s,
       extract(epoch from completed_at - started_at)::float8 as run_s from historian.backfill_jobs where id = $1`,
    [jobId],
  );
  if (last.status !== 'COMPLETED') throw new Error(`the backfill ended ${last.status}: ${last.error}`);

  // A bench that does not check its result proves nothing: the table against the truth.
  const [check] = await q<{ n: string; series: number; first: Date; last: Date; sum: number; all: string }>(
    `select count(*)::text as n, count(distinct r.series_id)::int as series, min(r.ts) as first, max(r.ts) as last,
       sum(r.value)::float8 as sum, (select count(*) from telemetry.readings)::text as all
     from telemetry.readings r join telemetry.series s on s.id = r.series_id
     join historian.tag_mappings m on m.id = s.tag_mapping_id where m.historian = $1`,
    [HISTORIAN],
  );
  const truth = truthSum(TAGS, values);
  const problems = [
    Number(check!.n) !== points && `${check!.n} rows for the mapped series, not ${points}`,
    Number(check!.all) !== points && `${check!.all} rows in telemetry.readings, not ${points}`,
    check!.series !== TAGS && `${check!.series} series hold rows, not ${TAGS}`,
    check!.first.getTime() !== shape.start && `first row at ${check!.first.toISOString()}, not ${from.toISOString()}`,
    check!.last.getTime() !== to.getTime() - STEP_MS && `last row at ${check!.last.toISOString()}`,
    Math.abs(check!.sum - truth) > 1e-9 * truth && `the values sum to ${check!.sum}, not ${truth}`,
    last.pointsFetched !== points && `pointsFetched ${last.pointsFetched}`,
    last.pointsImported !== points && `pointsImported ${last.pointsImported}`,
    (last.pointsRejected || last.pointsDuplicate || last.tagsFailed) &&
      `rejected ${last.pointsRejected}, duplicate ${last.pointsDuplicate}, tags failed ${last.tagsFailed}`,
  ].filter(Boolean);
  if (problems.length) throw new Error(`the backfill stored the wrong rows: ${problems.join('; ')}`);
  say(`checked: ${int(points)} rows over ${TAGS} series, from ${from.toISOString()}, values sum to the truth`);

  const seriesRows = await q<{ tag: string; id: number }>(
    `select m.tag, s.id from historian.tag_mappings m join telemetry.series s on s.tag_mapping_id = m.id
     where m.historian = $1`,
    [HISTORIAN],
  );
  const byTag = new Map(seriesRows.map((r) => [r.tag, r.id]));
  const seriesIds = Array.from({ length: TAGS }, (_, i) => byTag.get(tagPath(i))!);
  await hub.child.stop();
  await pi.stop();

  // The limit: the same points, one COPY, into the same table emptied.
  await q('truncate telemetry.readings');
  await q('checkpoint');
  const copy = await copyBaseline(url, dbName, shape, seriesIds, maxCount, async () => ({ bench: [process.pid] }));
  const [copied] = await q<{ n: string }>('select count(*)::text as n from telemetry.readings');
  if (Number(copied!.n) !== points) throw new Error(`the COPY left ${copied!.n} rows, not ${points}`);

  const rate = points / seconds;
  const ratio = seconds / copy.seconds;
  const half = seconds / 2;
  const peakOf = (pred: (t: number) => boolean) =>
    Math.max(...memory.samples.filter((s) => pred(s.t)).map((s) => s.mib.hub!));
  const rssFigures = {
    atStart: rssAtStart,
    sampledMax: memory.max.hub!,
    kernelPeak: hubPeak,
    firstHalfMax: peakOf((t) => t <= half),
    secondHalfMax: peakOf((t) => t > half),
    fakeSampledMax: memory.max.fake!,
  };
  report(points, seconds, copy.seconds, hubCpu, copy.cpu, rssFigures);
  say(
    `job: queued ${f2(jobRow?.queued_s)} s, ran ${f2(jobRow?.run_s)} s (started_at → completed_at); ` +
      `the fake answered ${int(Number(fakeStats.calls))} calls (${JSON.stringify(fakeStats.byPath)})`,
  );
  if (hubCpu.otherShare > 0.1)
    say(`! other processes used ${(hubCpu.otherShare * 100).toFixed(0)}% of the machine: rerun on a quiet one`);

  const file = writeResult('backfill', {
    at: new Date().toISOString(),
    options: opts,
    points,
    tags: TAGS,
    values,
    maxCount,
    fakeEvents: stored ? 'stored' : 'generated',
    range: { from, to },
    hub: { seconds, pointsPerSecond: rate, job: jobRow, progress: last, cpu: hubCpu, rssMiB: rssFigures, timeline },
    copy: { seconds: copy.seconds, pointsPerSecond: points / copy.seconds, cpu: copy.cpu },
    ratio,
    fake: fakeStats,
    rssSamples: memory.samples,
    historianYml: config.historianYml,
    wallSeconds: (Date.now() - started) / 1000,
  });
  say(`\nfull figures: ${file} (wall time ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const line = resultLine('backfill', {
    points: String(points),
    seconds: f2(seconds),
    points_per_s: String(Math.round(rate)),
    copy_seconds: f2(copy.seconds),
    ratio: f2(ratio),
    rss_mib: f1(rssFigures.sampledMax),
  });
  const summary = await writeSummary('backfill', opts, [line], {
    points,
    tags: TAGS,
    valuesPerTag: values,
    maxCount,
    fakeEvents: stored ? 'stored' : 'generated',
    seconds,
    pointsPerSecond: rate,
    copySeconds: copy.seconds,
    copyPointsPerSecond: points / copy.seconds,
    ratio,
    rssMiB: rssFigures,
    cpuSeconds: { hub: hubCpu.seconds, copy: copy.cpu.seconds },
    otherShare: { hub: hubCpu.otherShare, copy: copy.cpu.otherShare },
  });
  say(`summary (commit it when quoted): ${summary}`);
  say(line);
}

function report(
  points: number,
  seconds: number,
  copySeconds: number,
  hub: CpuWindow,
  copy: CpuWindow,
  rss: Record<string, number>,
): void {
  const cpu = (w: CpuWindow, k: string) => w.seconds[k] ?? 0;
  const total = (w: CpuWindow) => Object.values(w.seconds).reduce((a, b) => a + b, 0);
  const share = (w: CpuWindow, k: string) => `${f1(cpu(w, k))} (${((100 * cpu(w, k)) / total(w)).toFixed(0)}%)`;
  const row = (name: string, s: number, w: CpuWindow) => [
    name,
    int(points),
    f2(s),
    int(points / s),
    share(w, 'hub'),
    share(w, 'fake'),
    share(w, 'postgres'),
    share(w, 'pg background'),
    share(w, 'bench'),
    f2((total(w) * 1e6) / points),
    `${(w.otherShare * 100).toFixed(0)}%`,
  ];
  say(
    table(
      ['run', 'points', 'seconds', 'points/s', 'hub CPU s', 'fake', 'postgres', 'pg bg', 'bench', 'µs/pt', 'other'],
      [row('hub backfill', seconds, hub), row('one binary COPY', copySeconds, copy)],
    ),
  );
  say(
    `ratio hub / COPY ${f2(seconds / copySeconds)}; hub RSS MiB: ${f1(rss.atStart)} before the job, sampled max ` +
      `${f1(rss.sampledMax)} (first half ${f1(rss.firstHalfMax)}, second half ${f1(rss.secondHalfMax)}), ` +
      `kernel peak ${f1(rss.kernelPeak)}; fake RSS max ${f1(rss.fakeSampledMax)}`,
  );
}
