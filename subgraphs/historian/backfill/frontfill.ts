import type { HistorianFile } from '../../../lib/config/historian.ts';
import type { HistorianConnector } from '../../../lib/connectors/historian/types.ts';
import type { Db } from '../../../lib/db/index.ts';
import { log } from '../../../lib/log.ts';
import type { TelemetrySink } from '../../../lib/telemetry/types.ts';
import * as repo from './backfill.repo.ts';
import { Checkpoints } from './checkpoints.ts';
import { fetchAll, type FetchTask, mappedTag } from './fetch.ts';

export interface FrontfillDeps {
  db: Db;
  sink: TelemetrySink;
  connectors: ReadonlyMap<string, HistorianConnector>;
  settings: HistorianFile['frontfill'];
  maxTagAttempts: number;
  checkpointMs: number;
  /** The clock (tests move it); the round reads up to now − lag. */
  now: () => number;
  counters: Record<string, number>;
  /** True once the process is stopping: the round ends after the pages it read are committed. */
  stopping: () => boolean;
}

/**
 * One frontfill round: every active mapped tag of every historian read from its high watermark up to now − lag,
 * through the same reader and pipeline as a backfill. A hub that was down an hour reads that hour in the first
 * round after it starts; a tag never fetched starts `initialLookbackMinutes` back. A tag that fails is tried again
 * next round from where its watermark stands, so a failure leaves no gap, only a delay.
 */
export async function frontfillRound(d: FrontfillDeps): Promise<void> {
  const until = new Date(d.now() - d.settings.lagSeconds * 1000);
  const first = new Date(until.getTime() - d.settings.initialLookbackMinutes * 60_000);
  const cp = new Checkpoints((deltas) => repo.addFetched(d.db, repo.deltaRanges(deltas)), d.checkpointMs);
  cp.start();
  try {
    for (const [name, connector] of d.connectors) {
      const tasks: FetchTask[] = (await repo.frontfillTags(d.db, name))
        .map((t) => ({ ...t, from: t.high ? new Date(t.high) : first }))
        .filter((t) => t.from < until)
        .map((t) => ({
          tagMappingId: t.tagMappingId,
          tag: mappedTag(t),
          ranges: [{ from: t.from, to: until }],
        }));
      if (!tasks.length) continue;
      let failed = 0;
      await fetchAll({ connector, sink: d.sink, maxTagAttempts: d.maxTagAttempts }, tasks, {
        committed: (task, range, fetched, outcome) => {
          d.counters.frontfillPoints = (d.counters.frontfillPoints ?? 0) + fetched;
          cp.committed(task.tagMappingId, range, fetched, outcome);
        },
        tagDone: (task, err) => {
          if (!err) return;
          failed++;
          log.warn({ historian: name, tag: task.tag.tag, err }, 'frontfill of a tag failed; tried again next round');
        },
        stop: d.stopping,
      }).catch((err: Error) => {
        d.counters.frontfillFailures = (d.counters.frontfillFailures ?? 0) + 1;
        log.warn({ historian: name, err: err.message }, 'frontfill round failed; tried again next round');
      });
      if (failed) d.counters.frontfillTagFailures = (d.counters.frontfillTagFailures ?? 0) + failed;
    }
  } finally {
    await cp.stop();
  }
  d.counters.frontfillRounds = (d.counters.frontfillRounds ?? 0) + 1;
}
