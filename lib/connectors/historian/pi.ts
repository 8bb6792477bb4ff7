import type { ConnectionConfig } from '../../config/connection.ts';
import { badResponse, unavailable } from '../errors.ts';
import { UpstreamClient } from '../http.ts';
import { describePiError, type PiItem, piValue, webException } from './pi-values.ts';
import type { HistorianConnector, HistorianTag, PageRequest, PageResult, RecordedPage, TagFailure } from './types.ts';
import { wireTimeMs } from './wire-time.ts';

/** Paths per `points/multiple` call, and a bound on its query string (PI answers a long URL with 414/400). */
const PATHS_PER_CALL = 100;
const MAX_QUERY_CHARS = 8_000;
/** A run of equal timestamps is read in one widened call of at most this many values (memory stays bounded). */
const MAX_WIDENED = 1_000_000;
const POINT_FIELDS =
  'Items.Identifier;Items.Object.WebId;Items.Object.PointType;Items.Object.EngineeringUnits;Items.Exception';
const RECORDED_FIELDS = 'Items.Timestamp;Items.Value;Items.Good;Items.Questionable;Items.Substituted';

interface Parsed {
  ms: number;
  item: PiItem;
}

/**
 * AVEVA (OSIsoft) PI Web API (reference/protocols.md §1). Tags resolve in bulk through `points/multiple`; recorded
 * values have no next link, so they are paged by time as kukur does: a full page (Items.length === maxCount) ends at
 * some timestamp T, the items at T are dropped from it and the next call starts at T (startTime is inclusive under
 * `Inside`), so values sharing T are never split. A page full of one timestamp is read again with a larger maxCount.
 */
export class PiWebApiConnector implements HistorianConnector {
  readonly name: string;
  readonly client: UpstreamClient;
  /** Tags a batch: 100 sub-requests keep a body small and a failed call cheap to send again. */
  readonly pagesPerCall = 100;
  private readonly baseUrl: string;
  private count: number;
  /** The smallest maxCount the server refused (MaxReturnedItemsPerCall is below it). */
  private refusedCount = Number.POSITIVE_INFINITY;

  constructor(cfg: { name: string; connection: ConnectionConfig; maxCount?: number }) {
    this.name = cfg.name;
    this.client = new UpstreamClient(cfg.name, cfg.connection);
    this.baseUrl = cfg.connection.baseUrl.replace(/\/$/, '');
    this.count = cfg.maxCount ?? 10_000;
  }

  /** The maxCount asked for now: lowered for good once the server refuses a larger one. */
  get maxCount(): number {
    return this.count;
  }

  async resolveTags(tags: readonly string[]): Promise<{ resolved: HistorianTag[]; failed: TagFailure[] }> {
    const resolved: HistorianTag[] = [];
    const failed: TagFailure[] = [];
    for (const chunk of chunks(tags)) {
      const query = [...chunk.map((t) => `path=${encodeURIComponent(t)}`), `selectedFields=${POINT_FIELDS}`];
      const res = await this.client.request({
        url: `points/multiple?${query.join('&')}`,
        describeError: describePiError,
      });
      const body = res.json<{ Items?: PointItem[] }>();
      const we = webException(this.name, 'points/multiple', body);
      if (we) throw we;
      if (!Array.isArray(body?.Items)) throw badResponse(this.name, 'points/multiple answered without Items');
      // Items come in the order asked; Identifier says which path each one answers, so trust it where present.
      const byPath = new Map(body.Items.map((it, i) => [String(it?.Identifier ?? chunk[i]), it]));
      for (const tag of chunk) {
        const it = byPath.get(tag);
        const o = it?.Object;
        if (it?.Exception || !o || typeof o.WebId !== 'string') {
          failed.push({ tag, reason: failureReason(it) });
          continue;
        }
        resolved.push({ tag, ref: o.WebId, type: String(o.PointType ?? 'unknown'), units: o.EngineeringUnits || null });
      }
    }
    return { resolved, failed };
  }

  async *recorded(tag: HistorianTag, from: Date, to: Date, signal?: AbortSignal): AsyncIterable<RecordedPage> {
    const end = to.getTime();
    let start = from.getTime();
    while (start < end) {
      const read = await this.page(tag, start, end, this.count, signal);
      const { page, next } = await this.settle(tag, start, end, read, signal);
      if (page.points.length || page.refused.length) yield page;
      if (next === null) return;
      start = next.getTime();
    }
  }

  /**
   * The next page of up to 100 tags in one `POST /batch`, each sub-request a `streams/{webId}/recorded` from its own
   * cursor (reference/protocols.md §1: sub-requests without ParentIds run in parallel). A sub-request's failure
   * (its Status, Errors or WebException) is that tag's error; a refused maxCount or a page of one timestamp is read
   * again on the tag's own path, so batching changes the round trips, never the values.
   */
  async readPages(reqs: readonly PageRequest[], signal?: AbortSignal): Promise<PageResult[]> {
    if (reqs.length > this.pagesPerCall) throw new RangeError(`at most ${this.pagesPerCall} pages a call`);
    const count = this.count;
    const body = Object.fromEntries(
      reqs.map((r, i) => [String(i), { Method: 'GET', Resource: this.recordedUrl(r.tag, r.from, r.to, count) }]),
    );
    const res = await this.client.request({
      method: 'POST',
      url: 'batch',
      data: body,
      // CSRF defence (EnableCSRFDefense, on by default) refuses a POST without it [doc: pi-web-api/page/1023034].
      headers: { 'X-Requested-With': 'XMLHttpRequest' },
      // Every sub-request is a GET: the batch may be sent again.
      idempotent: true,
      describeError: describePiError,
      signal,
    });
    const answers = res.json<Record<string, BatchAnswer> | null>();
    const we = webException(this.name, 'batch', answers);
    if (we) throw we;
    if (!answers || typeof answers !== 'object' || Array.isArray(answers))
      throw badResponse(this.name, 'batch answered without an object of sub-responses');
    return Promise.all(
      reqs.map(async (r, i): Promise<PageResult> => {
        try {
          const start = r.from.getTime();
          const end = r.to.getTime();
          const items = await this.subAnswer(r.tag, start, end, count, answers[String(i)], signal);
          return { tag: r.tag, ...(await this.settle(r.tag, start, end, items, signal)) };
        } catch (e) {
          if (signal?.aborted) throw e;
          return { tag: r.tag, error: e as Error };
        }
      }),
    );
  }

  /** One sub-response as parsed items (with the count they answer), read again alone where batching cannot. */
  private async subAnswer(
    tag: HistorianTag,
    start: number,
    end: number,
    count: number,
    a: BatchAnswer | undefined,
    signal?: AbortSignal,
  ): Promise<{ items: Parsed[]; count: number }> {
    const path = `streams/${tag.ref}/recorded`;
    if (!a || typeof a !== 'object') throw badResponse(this.name, `batch: no sub-response for ${tag.tag}`);
    const status = typeof a.Status === 'number' ? a.Status : undefined;
    if (status === undefined) throw badResponse(this.name, `batch: the sub-response for ${tag.tag} has no Status`);
    if (status >= 400) {
      const why = errorsOf(a.Content) ?? 'no details';
      if (status === 400 && isCountRefusal(why)) {
        this.refusedCount = Math.min(this.refusedCount, count);
        // Lowered for good, as a refused single call lowers it, so the next batch is not refused again.
        this.count = Math.min(this.count, Math.floor(count / 2));
        return this.page(tag, start, end, this.count, signal);
      }
      const msg = `${tag.tag}: GET ${path} (in a batch) answered ${status}: ${why}`;
      const retryable = status >= 500 || status === 408 || status === 429;
      throw retryable ? unavailable(this.name, msg, { status }) : badResponse(this.name, msg, { status });
    }
    return { items: this.parse(tag, path, a.Content), count };
  }

  /**
   * A page as kukur cuts it: a full page may stop part-way through the values at its last timestamp, so those are
   * dropped and the next page starts at it; a full page of one timestamp is widened first. The page covers
   * [start, next ?? end) exactly.
   */
  private async settle(
    tag: HistorianTag,
    start: number,
    end: number,
    read: { items: Parsed[]; count: number },
    signal?: AbortSignal,
  ): Promise<{ page: RecordedPage; next: Date | null }> {
    let { items, count } = read;
    if (items.length >= count && items[0]!.ms === items.at(-1)!.ms)
      ({ items, count } = await this.widen(tag, start, end, count, signal));
    const full = items.length >= count;
    const last = items.at(-1)?.ms;
    const stop = full && last !== undefined && last > start && last < end ? last : end;
    const page: RecordedPage = { points: [], refused: [] };
    for (const { ms, item } of items) {
      if (ms >= stop) break; // [from, to): Inside also returns values at endTime
      if (ms < start) throw badResponse(this.name, `${tag.tag}: a value at ${item.Timestamp}, before the range asked`);
      const v = piValue(item, new Date(ms));
      if ('point' in v) page.points.push(v.point);
      else page.refused.push(v.refused);
    }
    return { page, next: stop < end ? new Date(stop) : null };
  }

  /**
   * A full page all at one timestamp: more values share it than one call returns. Ask again for the same window
   * with a larger maxCount, halving the gap towards the smallest count refused, until the page is no longer one
   * timestamp; if the server's cap is reached first, fail rather than skip or loop.
   */
  private async widen(tag: HistorianTag, start: number, end: number, ok: number, signal?: AbortSignal) {
    for (;;) {
      const next = Math.min(
        MAX_WIDENED,
        Number.isFinite(this.refusedCount) ? Math.floor((ok + this.refusedCount) / 2) : ok * 2,
      );
      if (next <= ok)
        throw badResponse(
          this.name,
          `${tag.tag}: more than ${ok} values recorded at ${new Date(start).toISOString()}, more than one call ` +
            `may return (MaxReturnedItemsPerCall); raise the server's limit to read them all`,
        );
      const items = await this.tryPage(tag, start, end, next, signal);
      if (items === 'refused') continue; // refusedCount is now `next`: try between it and `ok`
      if (items.length < next || items[0]!.ms !== items.at(-1)!.ms) return { items, count: next };
      ok = next;
    }
  }

  /** One page, lowering maxCount for this connector (halved until accepted) while the server refuses it. */
  private async page(tag: HistorianTag, start: number, end: number, count: number, signal?: AbortSignal) {
    for (;;) {
      const items = await this.tryPage(tag, start, end, count, signal);
      if (items !== 'refused') return { items, count };
      if (count <= 1) throw badResponse(this.name, `${tag.tag}: the server refuses every maxCount`);
      count = Math.floor(count / 2);
      this.count = Math.min(this.count, count);
    }
  }

  /** One call for [start, end] (both inclusive under boundaryType Inside), or 'refused' when maxCount is too large. */
  private async tryPage(
    tag: HistorianTag,
    start: number,
    end: number,
    count: number,
    signal?: AbortSignal,
  ): Promise<Parsed[] | 'refused'> {
    const path = `streams/${tag.ref}/recorded`;
    const res = await this.client.request({
      url: this.recordedUrl(tag, new Date(start), new Date(end), count),
      pass: (s) => s === 400,
      describeError: describePiError,
      signal,
    });
    if (res.status === 400) {
      const why = describePiError(res.text)?.message ?? 'no details';
      if (isCountRefusal(why)) {
        this.refusedCount = Math.min(this.refusedCount, count);
        return 'refused';
      }
      throw badResponse(this.name, `GET ${path} answered 400: ${why}`, { status: 400, rejected: true });
    }
    return this.parse(tag, path, res.json());
  }

  /** `streams/{webId}/recorded` for [start, end] (both inclusive under Inside), absolute as a batch Resource wants. */
  private recordedUrl(tag: HistorianTag, from: Date, to: Date, count: number): string {
    const q = new URLSearchParams({
      startTime: from.toISOString(),
      endTime: to.toISOString(),
      maxCount: String(count),
      boundaryType: 'Inside',
      selectedFields: RECORDED_FIELDS,
    });
    return `${this.baseUrl}/streams/${encodeURIComponent(tag.ref)}/recorded?${q}`;
  }

  private parse(tag: HistorianTag, path: string, body: unknown): Parsed[] {
    const we = webException(this.name, path, body);
    if (we) throw we;
    const items = (body as { Items?: unknown } | null)?.Items;
    if (!Array.isArray(items)) throw badResponse(this.name, `${path} (${tag.tag}) answered without Items`);
    let prev = Number.NEGATIVE_INFINITY;
    return items.map((item: PiItem) => {
      const ms = wireTimeMs(item?.Timestamp);
      if (ms === undefined)
        throw badResponse(this.name, `${tag.tag}: a value with timestamp ${JSON.stringify(item?.Timestamp)}`);
      // Paging by time relies on the order: a page that goes backwards would skip or repeat values.
      if (ms < prev) throw badResponse(this.name, `${tag.tag}: values out of time order at ${item.Timestamp}`);
      prev = ms;
      return { ms, item };
    });
  }

  close(): void {
    this.client.close();
  }
}

/** One sub-response of `POST /batch` [doc: batch/actions/execute]. */
interface BatchAnswer {
  Status?: unknown;
  Content?: unknown;
}

/** PI's `{"Errors":[...]}` as one message. */
function errorsOf(content: unknown): string | undefined {
  const e = (content as { Errors?: unknown } | null)?.Errors;
  return Array.isArray(e) && e.length ? e.map(String).join('; ') : undefined;
}

/** [doc: page/1023030] "Parameter (name) is greater than the maximum allowed": MaxReturnedItemsPerCall. */
const isCountRefusal = (why: string) => /maxCount/i.test(why) && /greater than the maximum allowed/i.test(why);

interface PointItem {
  Identifier?: unknown;
  Object?: { WebId?: unknown; PointType?: unknown; EngineeringUnits?: string | null } | null;
  Exception?: { Errors?: unknown } | null;
}

function failureReason(it: PointItem | undefined): string {
  if (!it) return 'the historian did not answer for this path';
  const errs = it.Exception?.Errors;
  if (Array.isArray(errs) && errs.length) return errs.map(String).join('; ');
  return 'the historian returned no point for this path';
}

/** Paths in groups small enough for one URL. */
function chunks(tags: readonly string[]): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let chars = 0;
  for (const t of tags) {
    const len = encodeURIComponent(t).length + 6;
    if (cur.length && (cur.length >= PATHS_PER_CALL || chars + len > MAX_QUERY_CHARS)) {
      out.push(cur);
      cur = [];
      chars = 0;
    }
    cur.push(t);
    chars += len;
  }
  if (cur.length) out.push(cur);
  return out;
}
