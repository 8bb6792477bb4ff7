import type { Db } from '../../db/index.ts';
import type { ErrorCode } from '../../errors.ts';

export type UpstreamErrorCode = Extract<ErrorCode, 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_BAD_RESPONSE'>;

/** What the HTTP poller knows of one endpoint, as saved for the httpEndpoints query. */
export interface EndpointStatus {
  name: string;
  /** Credentials masked (redactUrl): this is what is stored, shown and logged. */
  url: string;
  intervalSeconds: number;
  /** When the last document that reached the store was received (set on the pipeline's ack). */
  lastSuccessAt?: Date;
  lastFailureAt?: Date;
  lastError?: string;
  /** Unset when the last failure was the pipeline's, not the endpoint's. */
  lastErrorCode?: UpstreamErrorCode;
  /** Failed polls since the endpoint last answered with JSON (pipeline failures count too). */
  consecutiveFailures: number;
  /** The HTTP exchange only; time spent waiting on the pipeline is not the endpoint's. */
  lastDurationMs?: number;
  /** Readings and dead letters committed by the pipeline. */
  readings: number;
  deadLetters: number;
  /** Polls that came due while the previous one was still running (usually: the pipeline pushing back). */
  skippedPolls: number;
  /** Set while a poll (request and submit) runs: shows a hung endpoint or a pipeline holding back. */
  pollingSince?: Date;
  nextPollAt?: Date;
}

/** One upsert per endpoint, so the iot subgraph (another process) can serve the poller's status. */
export async function saveEndpointStatus(db: Db, worker: string, status: EndpointStatus[]): Promise<void> {
  if (!status.length) return;
  await db
    .insertInto('iot.httpEndpoints')
    .values(
      status.map((s) => ({
        name: s.name,
        url: s.url,
        intervalSeconds: s.intervalSeconds,
        lastSuccessAt: s.lastSuccessAt ?? null,
        lastFailureAt: s.lastFailureAt ?? null,
        lastError: s.lastError ?? null,
        lastErrorCode: s.lastErrorCode ?? null,
        consecutiveFailures: s.consecutiveFailures,
        lastDurationMs: s.lastDurationMs === undefined ? null : Math.round(s.lastDurationMs),
        readings: s.readings,
        deadLetters: s.deadLetters,
        skippedPolls: s.skippedPolls,
        pollingSince: s.pollingSince ?? null,
        nextPollAt: s.nextPollAt ?? null,
        worker,
        updatedAt: new Date(),
      })),
    )
    .onConflict((oc) =>
      oc.column('name').doUpdateSet((eb) => ({
        url: eb.ref('excluded.url'),
        intervalSeconds: eb.ref('excluded.intervalSeconds'),
        lastSuccessAt: eb.ref('excluded.lastSuccessAt'),
        lastFailureAt: eb.ref('excluded.lastFailureAt'),
        lastError: eb.ref('excluded.lastError'),
        lastErrorCode: eb.ref('excluded.lastErrorCode'),
        consecutiveFailures: eb.ref('excluded.consecutiveFailures'),
        lastDurationMs: eb.ref('excluded.lastDurationMs'),
        readings: eb.ref('excluded.readings'),
        deadLetters: eb.ref('excluded.deadLetters'),
        skippedPolls: eb.ref('excluded.skippedPolls'),
        pollingSince: eb.ref('excluded.pollingSince'),
        nextPollAt: eb.ref('excluded.nextPollAt'),
        worker: eb.ref('excluded.worker'),
        updatedAt: eb.ref('excluded.updatedAt'),
      })),
    )
    .execute();
}
