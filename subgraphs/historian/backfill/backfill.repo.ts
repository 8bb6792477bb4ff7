import { sql } from 'kysely';
import type { Db } from '../../../lib/db/index.ts';
import type { BackfillStatus, BackfillTaskStatus } from '../../../lib/db/types.ts';

/**
 * Backfill jobs, their per-tag tasks and the tags' watermarks (migration 0009). What a tag has fetched is a
 * tstzmultirange: backfills and the frontfill add the ranges their committed pages cover, in any order, so a page
 * committed before an earlier one can never make a checkpoint skip the earlier one's values.
 */

export interface TimeRange {
  from: Date;
  to: Date;
}

/** A multirange as the queries below give it (json_agg of {from, to}, null when empty), oldest first. */
const ranges = (json: { from: string; to: string }[] | null): TimeRange[] =>
  (json ?? []).map((r) => ({ from: new Date(r.from), to: new Date(r.to) }));

/** The ranges of checkpoint deltas, per tag, as addFetched takes them. */
export const deltaRanges = (deltas: readonly TaskDelta[]) =>
  deltas.flatMap((d) => d.ranges.map((r) => ({ tagMappingId: d.tagMappingId, ...r })));

// ---- starting and steering jobs

export async function insertJob(
  db: Db,
  j: { historian: string; from: Date; to: Date; priority: number; createdBy: string | null },
  tagMappingIds: readonly string[],
) {
  return db.transaction().execute(async (trx) => {
    const job = await trx
      .insertInto('historian.backfillJobs')
      .values({
        historian: j.historian,
        rangeFrom: j.from,
        rangeTo: j.to,
        priority: j.priority,
        createdBy: j.createdBy,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('historian.backfillTasks')
      .values(tagMappingIds.map((tagMappingId) => ({ jobId: job.id, tagMappingId })))
      .execute();
    return job;
  });
}

export const jobById = (db: Db, id: string) =>
  db.selectFrom('historian.backfillJobs').selectAll().where('id', '=', id).executeTakeFirst();

/** Moves a job from one of `from` to `to`; undefined when it was in none of them (the caller says why). */
export const setJobStatus = (db: Db, id: string, from: readonly BackfillStatus[], to: BackfillStatus) =>
  db
    .updateTable('historian.backfillJobs')
    .set({
      status: to,
      ...(to === 'CANCELLED' ? { completedAt: new Date() } : {}),
      ...(to === 'PENDING' ? { completedAt: null, error: null } : {}),
    })
    .where('id', '=', id)
    .where('status', 'in', [...from])
    .returningAll()
    .executeTakeFirst();

/** Tasks of a job still to read (PENDING or RUNNING). */
export const openTaskCount = async (db: Db, jobId: string) =>
  Number(
    (
      await db
        .selectFrom('historian.backfillTasks')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('jobId', '=', jobId)
        .where('status', 'in', ['PENDING', 'RUNNING'])
        .executeTakeFirstOrThrow()
    ).n,
  );

/** A FAILED job resumed: its failed tags are read again with the rest. */
export const reopenFailedTasks = (db: Db, jobId: string) =>
  db
    .updateTable('historian.backfillTasks')
    .set({ status: 'PENDING', error: null, updatedAt: new Date() })
    .where('jobId', '=', jobId)
    .where('status', '=', 'FAILED')
    .execute();

/** The tasks of a job cancelled while no worker ran it. */
export const cancelOpenTasks = (db: Db, jobId: string) =>
  db
    .updateTable('historian.backfillTasks')
    .set({ status: 'CANCELLED', updatedAt: new Date() })
    .where('jobId', '=', jobId)
    .where('status', 'in', ['PENDING', 'RUNNING'])
    .execute();

/** A failed tag again: its task back to PENDING, and its job too when it had ended. */
export const retryTask = (db: Db, jobId: string, tagMappingId: string) =>
  db.transaction().execute(async (trx) => {
    const task = await trx
      .updateTable('historian.backfillTasks')
      .set({ status: 'PENDING', error: null, updatedAt: new Date() })
      .where('jobId', '=', jobId)
      .where('tagMappingId', '=', tagMappingId)
      .where('status', 'in', ['FAILED', 'CANCELLED'])
      .returning('tagMappingId')
      .executeTakeFirst();
    if (!task) return undefined;
    return trx
      .updateTable('historian.backfillJobs')
      .set({ status: 'PENDING', completedAt: null, error: null })
      .where('id', '=', jobId)
      .where('status', 'in', ['COMPLETED', 'FAILED', 'CANCELLED'])
      .returningAll()
      .executeTakeFirst()
      .then(
        (j) => j ?? trx.selectFrom('historian.backfillJobs').selectAll().where('id', '=', jobId).executeTakeFirst(),
      );
  });

// ---- running a job

/**
 * Takes the job for `worker` until `leaseMs` from now, when it may run: PENDING, or RUNNING under a lease that ran
 * out (its worker died or let it go at shutdown). Undefined when a worker holds it or it is not to run.
 */
export const claimJob = (db: Db, id: string, worker: string, leaseMs: number) =>
  db
    .updateTable('historian.backfillJobs')
    .set({
      status: 'RUNNING',
      worker,
      leaseUntil: sql<Date>`now() + ${leaseMs} * interval '1 millisecond'`,
      startedAt: sql<Date>`coalesce(started_at, now())`,
      runStartedAt: sql<Date>`now()`,
      runFetched: 0,
    })
    .where('id', '=', id)
    .where((eb) =>
      eb.or([
        eb('status', '=', 'PENDING'),
        eb.and([
          eb('status', '=', 'RUNNING'),
          eb.or([eb('leaseUntil', 'is', null), eb('leaseUntil', '<', sql<Date>`now()`)]),
        ]),
      ]),
    )
    .returningAll()
    .executeTakeFirst();

/**
 * Jobs waiting for a worker: PENDING ones (sent to the job runner when started, but a hub without a runner there
 * leaves that to the sweep), and RUNNING ones whose worker stopped renewing its lease (it died, or let go at
 * shutdown): another worker takes them over.
 */
export const jobsToRun = (db: Db) =>
  db
    .selectFrom('historian.backfillJobs')
    .select(['id', 'priority'])
    .where((eb) =>
      eb.or([
        eb('status', '=', 'PENDING'),
        eb.and([eb('status', '=', 'RUNNING'), eb('leaseUntil', '<', sql<Date>`now()`)]),
      ]),
    )
    .orderBy('priority', 'desc')
    .orderBy('createdAt')
    .limit(100)
    .execute();

/** A worker stopping lets its job go at once (not after the lease): the next worker resumes it. */
export const releaseLease = (db: Db, id: string, worker: string) =>
  db
    .updateTable('historian.backfillJobs')
    .set({ leaseUntil: sql<Date>`now() - interval '1 second'` })
    .where('id', '=', id)
    .where('worker', '=', worker)
    .execute();

/** A job's unfinished tasks with what each still has to fetch: the job's range minus what the tag has fetched. */
export async function openTasks(db: Db, jobId: string) {
  const { rows } = await sql<{
    tagMappingId: string;
    tag: string;
    ref: string | null;
    tagType: string | null;
    missing: { from: string; to: string }[] | null;
  }>`
    select t.tag_mapping_id, m.tag, m.ref, m.tag_type,
      (select json_agg(json_build_object('from', lower(r), 'to', upper(r)) order by lower(r))
       from unnest(tstzmultirange(tstzrange(j.range_from, j.range_to)) - coalesce(w.fetched, '{}')) r) as missing
    from historian.backfill_tasks t
    join historian.backfill_jobs j on j.id = t.job_id
    join historian.tag_mappings m on m.id = t.tag_mapping_id
    left join historian.tag_watermarks w on w.tag_mapping_id = t.tag_mapping_id
    where t.job_id = ${jobId} and t.status in ('PENDING', 'RUNNING')
    order by m.tag
  `.execute(db);
  return rows.map((r) => ({
    tagMappingId: r.tagMappingId,
    tag: r.tag,
    ref: r.ref,
    tagType: r.tagType,
    missing: ranges(r.missing),
  }));
}

/** What a run has done since its last checkpoint, per tag. */
export interface TaskDelta {
  tagMappingId: string;
  fetched: number;
  imported: number;
  rejected: number;
  duplicate: number;
  /** Ranges now committed (the pages' cover). */
  ranges: TimeRange[];
  position?: Date;
  status?: BackfillTaskStatus;
  error?: string | null;
}

/**
 * One checkpoint, in one transaction: the tags' fetched ranges, the tasks' counts and states, the job's lease.
 * Answers the job's status as it is now (a pause or cancel asked meanwhile), undefined when the lease was lost.
 */
export async function checkpoint(
  db: Db,
  job: { id: string; worker: string; leaseMs: number },
  deltas: readonly TaskDelta[],
): Promise<BackfillStatus | undefined> {
  return db.transaction().execute(async (trx) => {
    // What was stored is fetched, whoever holds the lease: the watermarks always take it.
    await addFetched(trx, deltaRanges(deltas));
    const fetched = deltas.reduce((n, d) => n + d.fetched, 0);
    const row = await trx
      .updateTable('historian.backfillJobs')
      .set({
        leaseUntil: sql<Date>`now() + ${job.leaseMs} * interval '1 millisecond'`,
        runFetched: sql<number>`run_fetched + ${fetched}`,
      })
      .where('id', '=', job.id)
      .where('worker', '=', job.worker)
      .returning('status')
      .executeTakeFirst();
    // A run that lost its lease does not count: the run that took the job over counts what it reads.
    if (row && deltas.length) {
      const col = <K extends keyof TaskDelta>(k: K) => deltas.map((d) => d[k] ?? null);
      await sql`
        update historian.backfill_tasks t set
          fetched = t.fetched + u.fetched, imported = t.imported + u.imported,
          rejected = t.rejected + u.rejected, duplicate = t.duplicate + u.duplicate,
          position = greatest(t.position, u.position), status = coalesce(u.status, t.status),
          error = case when u.status is null then t.error else u.error end, updated_at = now()
        from unnest(${col('tagMappingId')}::uuid[], ${col('fetched')}::int8[], ${col('imported')}::int8[],
          ${col('rejected')}::int8[], ${col('duplicate')}::int8[], ${col('position')}::timestamptz[],
          ${col('status')}::text[], ${col('error')}::text[])
          as u(tag_mapping_id, fetched, imported, rejected, duplicate, position, status, error)
        where t.job_id = ${job.id} and t.tag_mapping_id = u.tag_mapping_id
      `.execute(trx);
    }
    return row?.status;
  });
}

/** Adds committed ranges to their tags' watermarks (several per tag merged into one multirange first). */
export async function addFetched(db: Db, ranges: readonly ({ tagMappingId: string } & TimeRange)[]) {
  const real = ranges.filter((r) => r.to > r.from);
  if (!real.length) return;
  await sql`
    insert into historian.tag_watermarks as w (tag_mapping_id, fetched)
    select tag_mapping_id, range_agg(tstzrange(lo, hi, '[)'))
    from unnest(${real.map((r) => r.tagMappingId)}::uuid[], ${real.map((r) => r.from)}::timestamptz[],
      ${real.map((r) => r.to)}::timestamptz[]) as u(tag_mapping_id, lo, hi)
    group by tag_mapping_id
    -- Rows in key order: two checkpoints (a backfill's, the frontfill's) over the same tags cannot deadlock.
    order by tag_mapping_id
    on conflict (tag_mapping_id) do update set fetched = w.fetched + excluded.fetched, updated_at = now()
  `.execute(db);
}

/** The run is over: the job's final state (COMPLETED / FAILED / PAUSED / CANCELLED) and its lease let go. */
export async function endRun(
  db: Db,
  id: string,
  worker: string,
  status: BackfillStatus,
  error: string | null,
  /** Runs in the same transaction once the job has ended (its audit entry: both or neither). */
  andThen?: (trx: Db) => Promise<void>,
) {
  return db.transaction().execute(async (trx) => {
    if (status === 'CANCELLED') await cancelOpenTasks(trx, id);
    const ended = await trx
      .updateTable('historian.backfillJobs')
      .set({
        status,
        error,
        worker: null,
        leaseUntil: null,
        ...(status === 'PAUSED' || status === 'PENDING' ? {} : { completedAt: new Date() }),
      })
      .where('id', '=', id)
      .where('worker', '=', worker)
      // A pause or cancel ends as asked; any other end only a job still RUNNING (not resumed or paused meanwhile).
      .where('status', '=', status === 'PAUSED' || status === 'CANCELLED' ? status : 'RUNNING')
      .returningAll()
      .executeTakeFirst();
    // Changed meanwhile (resumed after this run saw the pause): the next run's, at once.
    if (!ended) await releaseLease(trx, id, worker);
    else await andThen?.(trx);
    return ended;
  });
}

// ---- progress and watermarks

export interface JobProgress {
  fetched: number;
  imported: number;
  rejected: number;
  duplicate: number;
  tags: number;
  completed: number;
  failed: number;
  /** Share of the tags × range fetched, 0–1. */
  done: number;
}

/** Jobs' totals over their tasks, how far their range is fetched (0–1), and their tasks by state. */
export async function jobsProgress(db: Db, ids: readonly string[]): Promise<Map<string, JobProgress>> {
  if (!ids.length) return new Map();
  const { rows } = await sql<{
    jobId: string;
    fetched: string;
    imported: string;
    rejected: string;
    duplicate: string;
    tags: number;
    completed: number;
    failed: number;
    done: number | null;
  }>`
    select t.job_id, coalesce(sum(t.fetched), 0) as fetched, coalesce(sum(t.imported), 0) as imported,
      coalesce(sum(t.rejected), 0) as rejected, coalesce(sum(t.duplicate), 0) as duplicate,
      count(*)::int as tags, count(*) filter (where t.status = 'COMPLETED')::int as completed,
      count(*) filter (where t.status = 'FAILED')::int as failed,
      avg(case when t.status = 'COMPLETED' then 1 else coalesce((
        select extract(epoch from sum(upper(r) - lower(r)))
        from unnest(w.fetched * tstzmultirange(tstzrange(j.range_from, j.range_to))) r), 0)
        / extract(epoch from j.range_to - j.range_from) end)::float8 as done
    from historian.backfill_tasks t
    join historian.backfill_jobs j on j.id = t.job_id
    left join historian.tag_watermarks w on w.tag_mapping_id = t.tag_mapping_id
    where t.job_id = any(${[...ids]}::uuid[])
    group by t.job_id
  `.execute(db);
  return new Map(
    rows.map((r) => [
      r.jobId,
      {
        fetched: Number(r.fetched),
        imported: Number(r.imported),
        rejected: Number(r.rejected),
        duplicate: Number(r.duplicate),
        tags: r.tags,
        completed: r.completed,
        failed: r.failed,
        done: r.done ?? 0,
      },
    ]),
  );
}

export const jobProgress = async (db: Db, id: string): Promise<JobProgress> =>
  (await jobsProgress(db, [id])).get(id) ?? {
    fetched: 0,
    imported: 0,
    rejected: 0,
    duplicate: 0,
    tags: 0,
    completed: 0,
    failed: 0,
    done: 0,
  };

export const jobTasks = (db: Db, jobId: string, status: readonly BackfillTaskStatus[] | undefined, limit: number) => {
  let q = db
    .selectFrom('historian.backfillTasks as t')
    .innerJoin('historian.tagMappings as m', 'm.id', 't.tagMappingId')
    .selectAll('t')
    .select('m.tag')
    .where('t.jobId', '=', jobId);
  if (status?.length) q = q.where('t.status', 'in', [...status]);
  return q.orderBy('m.tag').limit(limit).execute();
};

/** Per tag mapping: its fetched ranges, oldest first (the first's start is the low watermark, the last's end high). */
export async function watermarks(db: Db, tagMappingIds: readonly string[]) {
  if (!tagMappingIds.length) return [];
  const { rows } = await sql<{ tagMappingId: string; ranges: { from: string; to: string }[] | null }>`
    select w.tag_mapping_id,
      (select json_agg(json_build_object('from', lower(r), 'to', upper(r)) order by lower(r))
       from unnest(w.fetched) r) as ranges
    from historian.tag_watermarks w where w.tag_mapping_id = any(${[...tagMappingIds]}::uuid[])
  `.execute(db);
  return rows.map((r) => ({
    tagMappingId: r.tagMappingId,
    ranges: ranges(r.ranges),
  }));
}

/** The high watermark of each active mapping of a historian (null: never fetched), for the frontfill. */
export async function frontfillTags(db: Db, historian: string) {
  const { rows } = await sql<{
    tagMappingId: string;
    tag: string;
    ref: string;
    tagType: string | null;
    high: Date | null;
  }>`
    select m.id as tag_mapping_id, m.tag, m.ref, m.tag_type, upper(w.fetched) as high
    from historian.tag_mappings m
    left join historian.tag_watermarks w on w.tag_mapping_id = m.id
    where m.historian = ${historian} and m.is_active and m.ref is not null
    order by m.tag
  `.execute(db);
  return rows;
}
