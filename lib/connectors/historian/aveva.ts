import type { ConnectionConfig } from '../../config/connection.ts';
import { badResponse } from '../errors.ts';
import { UpstreamClient, type UpstreamRequest } from '../http.ts';
import { str } from '../erp/odata.ts';
import { PageGuard } from '../paging.ts';
import { avevaQuality } from './quality.ts';
import { wireTimeMs } from './wire-time.ts';
import type {
  HistorianConnector,
  HistorianPoint,
  HistorianTag,
  PageRequest,
  PageResult,
  RecordedPage,
  RefusedPoint,
  TagFailure,
} from './types.ts';

/** TagFilter allows at most 20 OR clauses (protocols.md §2); the same bound keeps a Tags $filter short. */
const TAGS_PER_CALL = 20;
/** ProcessValues filters one FQN a request: a readPages call reads this many tags at once. */
const PARALLEL_READS = 4;

export interface AvevaHistorianOptions {
  name: string;
  connection: ConnectionConfig;
  /** Where the REST v2 resources live (default '/Historian/v2'). */
  basePath?: string;
  /**
   * Rows asked for per request with $top/$skip. Without it the server's own page size and @odata.nextLink decide.
   * Either way every @odata.nextLink is followed.
   */
  pageSize?: number;
  /** Rows a tag's page of readPages holds before it is cut at a timestamp (default 10,000). */
  rowsPerPage?: number;
}

/** A ProcessValues / Tags row as REST v2 sends it (Quality and QualityDetail are not in the documented sample). */
interface Row {
  FQN?: string;
  DateTime?: unknown;
  Value?: unknown;
  Text?: unknown;
  OpcQuality?: number | null;
  Quality?: number | null;
  TagType?: unknown;
  EngUnit?: unknown;
}

/** OData error bodies: v4 `{error: {code, message}}`, or the plain `{error: "FQN doesn't exist"}` of the docs. */
function odataError(body: string): { message: string; upstreamCode?: string } | undefined {
  try {
    const e = (JSON.parse(body) as { error?: unknown }).error;
    if (typeof e === 'string') return { message: e };
    if (e && typeof e === 'object') {
      const { code, message } = e as { code?: unknown; message?: unknown };
      if (typeof message === 'string') return { message, upstreamCode: typeof code === 'string' ? code : undefined };
    }
  } catch {
    // Not JSON (an IIS error page): the status alone is the message.
  }
  return undefined;
}

/**
 * AVEVA (Wonderware) Historian REST/OData v2 (protocols.md §2): tags from `{basePath}/Tags`, raw values from
 * `{basePath}/ProcessValues` with RetrievalMode=Delta, paged by the server's @odata.nextLink (and $top/$skip when a
 * page size is configured). DateTime literals are unquoted in v2; FQNs are quoted OData strings.
 */
export class AvevaHistorianConnector implements HistorianConnector {
  readonly name: string;
  readonly client: UpstreamClient;
  private readonly base: string;
  private readonly pageSize?: number;
  private readonly rowsPerPage: number;
  readonly pagesPerCall = TAGS_PER_CALL;

  constructor(opts: AvevaHistorianOptions) {
    this.name = opts.name;
    this.client = new UpstreamClient(opts.name, opts.connection);
    this.base = (opts.basePath ?? '/Historian/v2').replace(/\/$/, '');
    this.pageSize = opts.pageSize;
    this.rowsPerPage = opts.rowsPerPage ?? 10_000;
  }

  async resolveTags(fqns: readonly string[]): Promise<{ resolved: HistorianTag[]; failed: TagFailure[] }> {
    const resolved: HistorianTag[] = [];
    const failed: TagFailure[] = [];
    const unique = [...new Set(fqns)];
    for (let i = 0; i < unique.length; i += TAGS_PER_CALL) {
      const chunk = unique.slice(i, i + TAGS_PER_CALL);
      const filter = chunk.map((f) => `FQN eq ${str(f)}`).join(' or ');
      // Tag names are case-insensitive in the Historian (SQL Server): match the answer the same way.
      const found = new Map<string, Row>();
      for await (const rows of this.rows(`${this.base}/Tags`, { $filter: filter }, 'tags')) {
        for (const r of rows) if (typeof r.FQN === 'string') found.set(r.FQN.toLowerCase(), r);
      }
      for (const tag of chunk) {
        const r = found.get(tag.toLowerCase());
        if (!r) {
          failed.push({ tag, reason: `no tag with FQN ${str(tag)} in ${this.base}/Tags` });
          continue;
        }
        const units = typeof r.EngUnit === 'string' && r.EngUnit !== '' ? r.EngUnit : null;
        resolved.push({ tag, ref: r.FQN as string, type: String(r.TagType ?? ''), units });
      }
    }
    return { resolved, failed };
  }

  async *recorded(tag: HistorianTag, from: Date, to: Date, signal?: AbortSignal): AsyncIterable<RecordedPage> {
    for await (const rows of this.values(tag, from, to, signal)) yield this.toPage(rows, tag);
  }

  /**
   * Each tag's next page, PARALLEL_READS tags at a time (ProcessValues takes one FQN a filter). A page follows the
   * server's next links until it holds rowsPerPage rows and the next row has a later timestamp; the next page
   * starts at that row's timestamp, so equal timestamps are never split (a run longer than a page is read to its
   * end first) and a page covers exactly [from, next). A tag's failure (a 404, a malformed page) is its own.
   */
  async readPages(reqs: readonly PageRequest[], signal?: AbortSignal): Promise<PageResult[]> {
    const out: PageResult[] = new Array(reqs.length);
    let nextIndex = 0;
    const worker = async () => {
      for (let i = nextIndex++; i < reqs.length; i = nextIndex++) {
        const r = reqs[i]!;
        try {
          out[i] = { tag: r.tag, ...(await this.readPage(r, signal)) };
        } catch (e) {
          if (signal?.aborted) throw e;
          out[i] = { tag: r.tag, error: e as Error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, reqs.length) }, worker));
    return out;
  }

  private async readPage({ tag, from, to }: PageRequest, signal?: AbortSignal) {
    const rows: Row[] = [];
    let prev = Number.NEGATIVE_INFINITY;
    for await (const batch of this.values(tag, from, to, signal)) {
      for (const r of batch) {
        const ms = this.ms(r);
        // The cut relies on the order; a row outside the filter means the server did not apply it.
        if (ms < prev) throw badResponse(this.name, `${tag.tag}: rows out of time order at ${String(r.DateTime)}`);
        if (ms < from.getTime() || ms >= to.getTime())
          throw badResponse(this.name, `${tag.tag}: a row at ${String(r.DateTime)}, outside the range asked`);
        // Full, and this row starts a new timestamp: every row before it is read, so the next page starts here.
        if (rows.length >= this.rowsPerPage && ms !== prev) return { page: this.toPage(rows, tag), next: new Date(ms) };
        rows.push(r);
        prev = ms;
      }
    }
    return { page: this.toPage(rows, tag), next: null };
  }

  /**
   * ProcessValues of one tag in [from, to), Delta (every stored value), a server page at a time. A delta query
   * starts with the value in effect at its start time, stamped with it (Quality 133, protocols.md §2): not a value
   * recorded then, so it is left out; stored, it would add a value at every page start and frontfill round.
   */
  private async *values(tag: HistorianTag, from: Date, to: Date, signal?: AbortSignal): AsyncIterable<Row[]> {
    const filter =
      `FQN eq ${str(tag.ref)} and DateTime ge ${from.toISOString()} ` + `and DateTime lt ${to.toISOString()}`;
    let first = true;
    for await (const rows of this.rows(
      `${this.base}/ProcessValues`,
      { $filter: filter, RetrievalMode: 'Delta' },
      tag.ref,
      signal,
    )) {
      const initial = first && rows[0]?.Quality === 133 && this.ms(rows[0]) === from.getTime();
      if (rows.length) first = false;
      yield initial ? rows.slice(1) : rows;
    }
  }

  private toPage(rows: readonly Row[], tag: HistorianTag): RecordedPage {
    const isString = /^string$/i.test(tag.type);
    const page: RecordedPage = { points: [], refused: [] };
    for (const r of rows) {
      const p = this.point(r, isString);
      if ('reason' in p) page.refused.push(p);
      else page.points.push(p);
    }
    return page;
  }

  private ms(r: Row): number {
    const ms = wireTimeMs(r.DateTime, 'utc');
    if (ms === undefined) {
      throw badResponse(this.name, `a ${r.FQN ?? '?'} row has no valid DateTime (${JSON.stringify(r.DateTime)})`);
    }
    return ms;
  }

  close(): void {
    this.client.close();
  }

  /** One row: a number (analog, or discrete 0/1 whatever its Text message says), or refused with why. */
  private point(r: Row, isString: boolean): HistorianPoint | RefusedPoint {
    const ts = new Date(this.ms(r));
    // A string tag's value is in Text with a NULL Value, also when the tag's type is not known here.
    const text = (r.Value === null || r.Value === undefined) && typeof r.Text === 'string' && r.Text !== '';
    if (isString || text) return { ts, reason: 'string value: the hub stores numbers only', raw: r.Text ?? r.Value };
    // A NULL Value (bad quality, QualityDetail 24) marks a gap: counted as refused, never a zero.
    if (r.Value === null || r.Value === undefined) return { ts, reason: 'no value', raw: r };
    if (typeof r.Value !== 'number' || !Number.isFinite(r.Value))
      return { ts, reason: `not a number: ${JSON.stringify(r.Value)}`, raw: r.Value };
    return { ts, value: r.Value, quality: avevaQuality(r) };
  }

  /**
   * Every page of a resource: each @odata.nextLink followed to its end (guarded against a repeated page or link and
   * an empty page that promises more); with a page size, windows of $top asked for with $skip while they come full.
   */
  private async *rows(
    url: string,
    query: Record<string, string>,
    what: string,
    signal?: AbortSignal,
  ): AsyncIterable<Row[]> {
    const guard = new PageGuard(this.name);
    const top = this.pageSize;
    let skip = 0;
    let inWindow = 0;
    let next: string | undefined;
    for (;;) {
      const params = next ? undefined : { ...query, ...(top ? { $top: top, $skip: skip || undefined } : {}) };
      const res = await this.client.request({ url: next ?? url, params, signal, describeError: this.describe(what) });
      const body = res.json<{ value?: unknown; '@odata.nextLink'?: unknown }>();
      if (!body || !Array.isArray(body.value))
        throw badResponse(this.name, `${url} answered a body without a value array (${what})`);
      const rows = body.value as Row[];
      const link = typeof body['@odata.nextLink'] === 'string' ? body['@odata.nextLink'] : undefined;
      inWindow += rows.length;
      const windowFull = top !== undefined && !link && inWindow >= top;
      guard.page(rows.map(rowKey), link !== undefined || windowFull);
      if (link) guard.link(link);
      yield rows;
      if (link) next = link;
      else if (windowFull) {
        skip += inWindow;
        inWindow = 0;
        next = undefined;
      } else return;
    }
  }

  /** The historian's own error message, prefixed with what was asked for (a 404 names the unknown FQN). */
  private describe(what: string): UpstreamRequest['describeError'] {
    return (body) => {
      const e = odataError(body);
      return e && { ...e, message: `${what}: ${e.message}` };
    };
  }
}

const rowKey = (r: Row) => `${r.FQN}|${String(r.DateTime)}|${String(r.Value)}|${String(r.Text)}|${r.OpcQuality}`;
