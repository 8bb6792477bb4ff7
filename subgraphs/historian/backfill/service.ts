import type { HistorianConfig } from '../../../lib/config/historian.ts';
import type { BackfillJobRow } from '../../../lib/db/rows.ts';
import type { BackfillStatus } from '../../../lib/db/types.ts';
import { badInput, HubError, notFound } from '../../../lib/errors.ts';
import type { JobRunner } from '../../../lib/jobs/runner.ts';
import type { Db } from '../../../lib/db/index.ts';
import { isUuid } from '../../../lib/db/index.ts';
import * as repo from './backfill.repo.ts';
import { mappingsForBackfill } from './mappings.repo.ts';
import { BACKFILL_QUEUE } from './source.ts';

export const MAX_BACKFILL_TAGS = 10_000;

export interface StartInput {
  historian: string;
  tagMappingIds?: readonly string[] | null;
  tags?: readonly string[] | null;
  from: Date;
  to: Date;
  priority?: number | null;
}

const conflict = (message: string) => new HubError('CONFLICT', message);

/**
 * What the backfill mutations do, apart from role and audit (the resolvers' guard): check the request, write the
 * job and its tasks, and queue it. A hub without a job runner in this process (hub.yml jobs.enabled: false) still
 * takes jobs: a worker's sweep queues them within a lease period.
 */
export class Backfills {
  constructor(
    private readonly db: Db,
    private readonly historians: ReadonlyMap<string, { config: HistorianConfig }>,
    private readonly jobs: JobRunner | undefined,
    /** The frontfill's lag: a job's end is at most now − lag. */
    private readonly lagMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  /** The mappings a start names, checked: on this historian, with a handle, and `inScope` for the caller. */
  async start(i: StartInput, createdBy: string, inScope: (machineId: string) => Promise<void>) {
    if (!this.historians.has(i.historian)) throw notFound('Historian', i.historian);
    if (!(i.to > i.from)) throw badInput('`to` must be after `from`', { from: i.from, to: i.to });
    if (i.to.getTime() > this.now() + 60_000) throw badInput('`to` is in the future: the frontfill keeps tags current');
    // The newest values are the frontfill's: a job reaching into them would claim as fetched what the historian has
    // yet to receive (late values), and the frontfill starts from the end of what is fetched.
    const newest = new Date(this.now() - this.lagMs);
    const to = i.to > newest ? newest : i.to;
    if (!(to > i.from)) throw badInput('`from` is too recent: the frontfill reads the newest values', { newest });
    const priority = i.priority ?? 0;
    if (!Number.isInteger(priority) || priority < -100 || priority > 100)
      throw badInput('priority runs from -100 to 100', { priority });
    const byIds = i.tagMappingIds?.length ? i.tagMappingIds : undefined;
    const byTags = i.tags?.length ? i.tags : undefined;
    if (!byIds === !byTags) throw badInput('name the tags to fill: tagMappingIds or tags, not both');
    const asked = [...new Set(byIds ?? byTags!)];
    if (asked.length > MAX_BACKFILL_TAGS)
      throw badInput(`at most ${MAX_BACKFILL_TAGS} tags a job, not ${asked.length}`, { max: MAX_BACKFILL_TAGS });
    if (byIds && asked.some((id) => !isUuid(id))) throw badInput('a tagMappingId is not an id', { ids: asked });
    const found = await mappingsForBackfill(this.db, byIds ? { ids: asked } : { historian: i.historian, tags: asked });
    const key = byIds ? (m: (typeof found)[number]) => m.id : (m: (typeof found)[number]) => m.tag;
    const have = new Set(found.map(key));
    const missing = asked.filter((a) => !have.has(a));
    if (missing.length)
      throw badInput(
        `${missing.length} of the tags are not mapped${byIds ? '' : ` on ${i.historian}`}: map them first`,
        {
          missing: missing.slice(0, 100),
        },
      );
    const inactive = found.filter((m) => !m.isActive);
    if (inactive.length)
      throw badInput(`${inactive.length} of the mappings are inactive: activate them to fill them`, {
        mappings: inactive.slice(0, 100).map((m) => m.id),
      });
    const elsewhere = found.filter((m) => m.historian !== i.historian || !m.ref);
    if (elsewhere.length)
      throw badInput(
        `${elsewhere.length} of the mappings are not checked on ${i.historian} (made by historian system alone, or ` +
          'on another historian): map them with `historian` to read them',
        { mappings: elsewhere.slice(0, 100).map((m) => m.id) },
      );
    for (const machineId of new Set(found.map((m) => m.machineId))) await inScope(machineId);
    const job = await repo.insertJob(
      this.db,
      { historian: i.historian, from: i.from, to, priority, createdBy },
      found.map((m) => m.id),
    );
    await this.queue(job);
    return job;
  }

  async pause(id: string) {
    return this.move(id, ['PENDING', 'RUNNING'], 'PAUSED');
  }

  async resume(id: string) {
    const job = await this.move(id, ['PAUSED', 'FAILED'], 'PENDING');
    await repo.reopenFailedTasks(this.db, id);
    await this.queue(job);
    return job;
  }

  /** Its open tasks end here; a RUNNING job stops at its worker's next checkpoint. */
  async cancel(id: string) {
    const job = await this.move(id, ['PENDING', 'RUNNING', 'PAUSED'], 'CANCELLED');
    await repo.cancelOpenTasks(this.db, id);
    return job;
  }

  async retryTag(jobId: string, tagMappingId: string) {
    await this.existing(jobId);
    const job = isUuid(tagMappingId) ? await repo.retryTask(this.db, jobId, tagMappingId) : undefined;
    if (!job) throw conflict(`tag mapping ${tagMappingId} has no FAILED or CANCELLED tag in job ${jobId}`);
    if (job.status === 'PENDING') await this.queue(job);
    return job;
  }

  async existing(id: string): Promise<BackfillJobRow> {
    const job = isUuid(id) ? await repo.jobById(this.db, id) : undefined;
    if (!job) throw notFound('BackfillJob', id);
    return job;
  }

  private async move(id: string, from: BackfillStatus[], to: BackfillStatus): Promise<BackfillJobRow> {
    const cur = await this.existing(id);
    const moved = await repo.setJobStatus(this.db, id, from, to);
    if (!moved)
      throw conflict(`backfill job ${id} is ${cur.status}: only a ${from.join(' or ')} job can be made ${to}`);
    return moved;
  }

  private async queue(job: { id: string; priority: number }): Promise<void> {
    await this.jobs?.send(BACKFILL_QUEUE, { jobId: job.id }, { priority: job.priority, singletonKey: job.id });
  }
}
