/**
 * Child process of the backfill bench: the PI Web API fake (test/fakes/pi-web-api.ts) alone in its own process, so
 * its CPU (answering the batches: selecting values, encoding them as JSON) is counted apart from the hub's.
 * BENCH_TAGS tags of BENCH_VALUES values each, every STEP_MS from BENCH_START (common.ts: tagPath, pointValue).
 * BENCH_STORED=1 gives every tag its events as stored arrays instead of the fake's generator. Prints
 * `READY {"url":…,"stats":…}`; GET <stats> answers what the fake was asked.
 *   BENCH_TAGS=1000 BENCH_VALUES=10000 BENCH_START=<ms> node --import tsx bench/lib/backfill/pi-process.ts
 */
import { createServer } from 'node:http';
import { series } from '../../../test/fakes/pi-web-api-data.ts';
import { startPiWebApi } from '../../../test/fakes/pi-web-api.ts';
import { closeServer, listenLocal } from '../../../test/fakes/http-util.ts';
import { readyUntilSignal } from '../child.ts';
import { STEP_MS, tagPath, pointValue } from './common.ts';

const tags = Number(process.env.BENCH_TAGS);
const values = Number(process.env.BENCH_VALUES);
const start = Number(process.env.BENCH_START);
const stored = process.env.BENCH_STORED === '1';
if (!(tags > 0 && values > 0 && start > 0)) throw new Error('BENCH_TAGS, BENCH_VALUES and BENCH_START are required');

const t0 = performance.now();
const pi = await startPiWebApi();
for (let i = 0; i < tags; i++) {
  const value = (k: number) => pointValue(i, k);
  if (stored) pi.addTag(tagPath(i), { units: 'm3/h', events: series(start, values, STEP_MS, value) });
  else pi.addTag(tagPath(i), { units: 'm3/h', generate: { start, stepMs: STEP_MS, count: values, value } });
}
const setupMs = performance.now() - t0;

/** What the fake was asked: calls by path and status, and how long it took to answer them (wall time). */
const stats = createServer((_req, res) => {
  const byPath: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let answerMs = 0;
  for (const c of pi.trace) {
    byPath[c.path] = (byPath[c.path] ?? 0) + 1;
    byStatus[String(c.answered)] = (byStatus[String(c.answered)] ?? 0) + 1;
    if (c.answeredAt) answerMs += c.answeredAt - c.at;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ calls: pi.trace.length, byPath, byStatus, answerMs, setupMs, stored }));
});
const statsUrl = `${await listenLocal(stats)}/stats`;

readyUntilSignal({ url: pi.url, stats: statsUrl }, [() => pi.close(), () => closeServer(stats)]);
