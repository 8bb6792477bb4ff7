import { UpstreamError } from '../../../lib/connectors/errors.ts';
import type {
  HistorianConnector,
  HistorianTag,
  PageResult,
  RecordedPage,
} from '../../../lib/connectors/historian/types.ts';
import { tagSeriesKey } from '../../../lib/telemetry/caches.ts';
import type { BatchOutcome, DeadLetter, IncomingReading, TelemetrySink } from '../../../lib/telemetry/types.ts';
import type { TimeRange } from './backfill.repo.ts';

/** A mapping's tag as the connector reads it: its handle and, where the mapping kept it, its type. */
export const mappedTag = (m: { tag: string; ref: string; tagType: string | null }): HistorianTag => ({
  tag: m.tag,
  ref: m.ref,
  type: m.tagType ?? '',
  units: null,
});

/** One tag to read: what is still missing of it, oldest first. */
export interface FetchTask {
  tagMappingId: string;
  tag: HistorianTag;
  ranges: TimeRange[];
}

/** What a fetch tells its caller; all but `stop` are called once the pages concerned are committed. */
export interface FetchEvents {
  /** A page is stored (or was empty): `range` is now fetched for the tag (null: it must be read again). */
  committed(task: FetchTask, range: TimeRange | null, fetched: number, outcome: BatchOutcome): void;
  /** The tag is done: everything asked is fetched, or it failed with `error` (its committed pages stay). */
  tagDone(task: FetchTask, error?: string): void;
  /** Checked between calls: a pause or cancel stops reading (what was read is still committed). */
  stop(): boolean;
}

export interface FetchOptions {
  connector: HistorianConnector;
  sink: TelemetrySink;
  /** A tag whose page failed this many times in a row (transiently) fails; a refusal fails it at once. */
  maxTagAttempts: number;
  signal?: AbortSignal;
}

const NO_OUTCOME: BatchOutcome = { stored: 0, duplicate: 0, rejected: 0, deadLetters: 0, unresolved: 0 };
/** Calls in flight at once (each over its own tags). */
const LANES = 2;
/** Backoff before a tag (or the whole call) that failed transiently is read again: 200 ms doubling, at most 5 s. */
const backoffMs = (attempt: number) => Math.min(5000, 200 * 2 ** Math.max(0, attempt - 1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Reading {
  task: FetchTask;
  cursor: Date;
  attempts: number;
  /** Pages handed to the pipeline and not yet committed. */
  pending: number;
  reading: boolean;
  error?: string;
  /** tagDone was called. */
  done?: boolean;
}

/**
 * Reads every task's missing ranges through the connector's multi-tag reads (`pagesPerCall` tags a call, each
 * from its own cursor) and hands each page to the one pipeline as a batch. Reading runs ahead of committing,
 * bounded by the pipeline's backpressure (submit waits). Resolves when every page handed over is committed; throws
 * when the historian fails as a whole (after the connection's retries) or a commit failed (the data comes again on
 * the next run: nothing is marked fetched that was not stored).
 */
export async function fetchAll(o: FetchOptions, tasks: readonly FetchTask[], ev: FetchEvents): Promise<void> {
  let inFlight = 0;
  let sinkError: Error | undefined;
  let settle: (() => void) | undefined;
  const settled = () => {
    if (inFlight === 0) settle?.();
  };
  const finish = (s: Reading) => {
    if (s.done || s.reading || s.pending > 0) return;
    s.done = true;
    ev.tagDone(s.task, s.error);
  };
  const waiting = tasks.map(
    (task): Reading => ({ task, cursor: task.ranges[0]?.from ?? new Date(0), attempts: 0, pending: 0, reading: true }),
  );
  // Two lanes, each a call in flight over its own tags: one waits for the historian while the other hands its pages
  // to the pipeline, so neither side idles (the pipeline's backpressure still bounds what is read ahead).
  const perLane = Math.max(1, Math.min(o.connector.pagesPerCall, Math.ceil(waiting.length / LANES)));
  let callError: unknown;
  const lane = async () => {
    let group: Reading[] = [];
    while (!sinkError && callError === undefined && !ev.stop() && (waiting.length || group.length)) {
      while (group.length < perLane && waiting.length) {
        const s = waiting.shift()!;
        if (s.task.ranges.length) group.push(s);
        else {
          s.reading = false;
          finish(s);
        }
      }
      if (!group.length) break;
      const reqs = group.map((s) => ({ tag: s.task.tag, from: s.cursor, to: s.task.ranges[0]!.to }));
      const results = await readWithRetries(reqs).catch((err: unknown) => {
        callError ??= err;
        throw err;
      });
      const next: Reading[] = [];
      let retrying = 0;
      for (const [i, s] of group.entries()) {
        if (s.error) {
          // A committed page of it could not be placed (see handOver): it stops here.
          s.reading = false;
          finish(s);
          continue;
        }
        const r = results.find((x) => x.tag === reqs[i]!.tag) ?? results[i];
        if (!r || r.tag.ref !== s.task.tag.ref) {
          fail(s, 'the historian gave no answer for this tag');
          continue;
        }
        if ('error' in r) {
          s.attempts++;
          const again = r.error instanceof UpstreamError && r.error.retryable && s.attempts < o.maxTagAttempts;
          if (again) {
            next.push(s);
            retrying = Math.max(retrying, s.attempts);
          } else fail(s, r.error.message);
          continue;
        }
        s.attempts = 0;
        const range = { from: s.cursor, to: r.next ?? s.task.ranges[0]!.to };
        if (r.next && r.next <= s.cursor) {
          fail(s, `the historian's next page starts at ${r.next.toISOString()}, not after the page it followed`);
          continue;
        }
        await handOver(s, range, r);
        if (r.next) s.cursor = r.next;
        else {
          s.task.ranges.shift();
          if (s.task.ranges.length) s.cursor = s.task.ranges[0]!.from;
        }
        if (s.task.ranges.length) next.push(s);
        else {
          s.reading = false;
          finish(s);
        }
      }
      group = next;
      if (retrying) await sleep(backoffMs(retrying));
    }
  };
  try {
    const lanes = await Promise.allSettled(Array.from({ length: LANES }, lane));
    const failed = lanes.find((l) => l.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    // Whatever ended the loop, the pages handed over are committed (or failed) before this returns.
    if (inFlight > 0) await new Promise<void>((resolve) => (settle = resolve));
  }
  if (sinkError) throw sinkError;

  /** One call, tried again with backoff while the whole historian fails transiently (a WebException 503 in a 200). */
  async function readWithRetries(reqs: Parameters<HistorianConnector['readPages']>[0]) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await o.connector.readPages(reqs, o.signal);
      } catch (err) {
        const again = err instanceof UpstreamError && err.retryable && attempt < o.maxTagAttempts;
        if (!again || o.signal?.aborted) throw err;
        await sleep(backoffMs(attempt));
      }
    }
  }

  function fail(s: Reading, error: string) {
    s.reading = false;
    s.error = error;
    finish(s);
  }

  async function handOver(s: Reading, range: TimeRange, r: Extract<PageResult, { page: RecordedPage }>) {
    const { readings, deadLetters } = toBatch(s.task, r.page);
    const fetched = r.page.points.length + r.page.refused.length;
    if (fetched === 0) {
      ev.committed(s.task, range, 0, NO_OUTCOME);
      return;
    }
    s.pending++;
    inFlight++;
    const done = () => {
      s.pending--;
      inFlight--;
      finish(s);
      settled();
    };
    await o.sink.submit({
      source: 'HISTORIAN',
      readings,
      deadLetters,
      ack: (outcome) => {
        // Values the pipeline could not place on the tag's series (its mapping not yet known there) are not
        // fetched: the range stays unclaimed and the tag fails, to be retried.
        if (outcome.unresolved > 0)
          s.error ??= `${outcome.unresolved} values could not be placed on the tag's series: retry the tag`;
        ev.committed(s.task, outcome.unresolved > 0 ? null : range, fetched, outcome);
        done();
      },
      fail: (err) => {
        sinkError ??= err;
        // Not finished: the tag is read again from its watermark on the next run.
        s.reading = true;
        done();
      },
    });
  }
}

/**
 * A page as the pipeline takes it: numbers and states for the tag's series, refused values as dead letters. A
 * historian may hold several values at one timestamp (PI does); the hub stores one per series and millisecond, so
 * the first is kept and the others are refused by name (DUPLICATE_TIMESTAMP), not counted away as duplicates.
 */
export function toBatch(task: FetchTask, page: RecordedPage) {
  const sensorId = tagSeriesKey(task.tagMappingId);
  const readings: IncomingReading[] = [];
  const again: RecordedPage['refused'] = [];
  let last = Number.NaN;
  for (const p of page.points) {
    const ms = p.ts.getTime();
    if (ms === last) {
      again.push({ ts: p.ts, reason: 'a second value at this timestamp', raw: p.value });
      continue;
    }
    last = ms;
    readings.push(
      typeof p.value === 'number'
        ? { sensorId, ts: p.ts, value: p.value, sourceQuality: p.quality }
        : {
            sensorId,
            ts: p.ts,
            value: p.value.code,
            state: { name: p.value.state, code: p.value.code },
            sourceQuality: p.quality,
          },
    );
  }
  // Keyed by tag, timestamp and place among the refused values at that timestamp: a page never splits a
  // timestamp, so a page read again gives each refused value the same key.
  let prev = Number.NaN;
  let nth = 0;
  const keyed = (reason: DeadLetter['reason'], kind: string) => (x: RecordedPage['refused'][number]) => {
    const ms = x.ts.getTime();
    nth = ms === prev ? nth + 1 : 0;
    prev = ms;
    return {
      reason,
      detail: `${task.tag.tag} at ${x.ts.toISOString()}: ${x.reason}`,
      topic: task.tag.tag,
      payload: Buffer.from(JSON.stringify(x.raw ?? null)),
      sensorId,
      key: `historian:${task.tagMappingId}:${kind}:${ms}:${nth}`,
    };
  };
  const deadLetters: DeadLetter[] = page.refused.map(keyed('INVALID_VALUE', 'v'));
  prev = Number.NaN;
  deadLetters.push(...again.map(keyed('DUPLICATE_TIMESTAMP', 't')));
  return { readings, deadLetters };
}
