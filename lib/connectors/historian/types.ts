/**
 * The one historian interface (PI Web API, AVEVA Historian REST) and what every historian connector hands over, in
 * the hub's terms: UTC Dates, numbers or named states, and a quality on the hub's 0–100 scale. Connectors translate
 * wire formats; backfill and frontfill only see these.
 */

/** A tag as the historian knows it, resolved from the name a plant engineer writes (PI `\\server\tag`, AVEVA FQN). */
export interface HistorianTag {
  /** The name as given (the key of tag mappings). */
  tag: string;
  /** The historian's own handle for reads: PI's WebId, AVEVA's FQN. */
  ref: string;
  /** Float32, Int32, Digital, String... (PI PointType), Analog, Discrete, String (AVEVA TagType). */
  type: string;
  units: string | null;
}

/** A tag that could not be resolved, with the historian's reason (a mapping to it is refused with this). */
export interface TagFailure {
  tag: string;
  reason: string;
}

/** One recorded value. A digital or enumeration value is a state (name and code), never silently a number. */
export interface HistorianPoint {
  ts: Date;
  value: number | { state: string; code: number };
  /** 0–100 (quality.ts): what the historian said of this value. */
  quality: number;
}

/** A recorded value the hub cannot store (a string, an error object), counted with its reason, never dropped unseen. */
export interface RefusedPoint {
  ts: Date;
  reason: string;
  raw: unknown;
}

/** One page of one tag's recorded values, oldest first. */
export interface RecordedPage {
  points: HistorianPoint[];
  refused: RefusedPoint[];
}

/** One tag's next page to read: values recorded in [from, to). */
export interface PageRequest {
  tag: HistorianTag;
  from: Date;
  to: Date;
}

/**
 * What one readPages call gives for one tag: a page and where the next one starts (`next`; null once [from, to) is
 * read to its end) — the page covers exactly [from, next ?? to), which is what a checkpoint may record as fetched —
 * or this tag's own failure (an item's Errors, a 404): other tags of the call are not failed with it.
 */
export type PageResult =
  | { tag: HistorianTag; page: RecordedPage; next: Date | null }
  | { tag: HistorianTag; error: Error };

export interface HistorianConnector {
  /** The historian's name in historian.yml. */
  readonly name: string;
  /** Resolves tags in bulk (as few round trips as the historian allows); each one resolved or failed. */
  resolveTags(tags: readonly string[]): Promise<{ resolved: HistorianTag[]; failed: TagFailure[] }>;
  /**
   * Every value recorded for `tag` in [from, to), oldest first, a page at a time. Events sharing a timestamp across a
   * page boundary come exactly once; a run of equal timestamps longer than a page neither loops nor loses a value.
   */
  recorded(tag: HistorianTag, from: Date, to: Date, signal?: AbortSignal): AsyncIterable<RecordedPage>;
  /**
   * The next page of each of several tags, each from its own cursor, in as few round trips as the historian allows
   * (PI: one POST /batch; AVEVA: a few requests at once). At most `pagesPerCall` requests a call. A failure of the
   * whole call (auth, the server down after retries) throws; a failure of one tag is that tag's result.
   */
  readPages(reqs: readonly PageRequest[], signal?: AbortSignal): Promise<PageResult[]>;
  readonly pagesPerCall: number;
  close(): void;
}
