/**
 * The truth behind the fake PI Web API (pi-web-api.ts) and its wire encoding, after reference/protocols.md §1:
 * tags (points) with recorded events, PI time strings, value typing (digital states as {Name, Value, IsSystem}),
 * boundary types and selectedFields. Written from the protocol notes, not from any client.
 */

export type PointType = 'Float32' | 'Float64' | 'Int32' | 'Digital' | 'String';

/** An enumeration value as PI Web API encodes it (topics/value-types). */
export interface DigitalState {
  Name: string;
  Value: number;
  IsSystem: boolean;
}

/** A bad value may carry errors instead of a number (protocols.md §1: `{"Errors":[...]}` with Good=false). */
export interface ErrorValue {
  Errors: string[];
}

export type PiValue = number | string | boolean | DigitalState | ErrorValue;

/** One recorded event of the truth. `good` defaults to false for system states and error values, else true. */
export interface PiEvent {
  /** ms since the epoch (UTC) */
  ts: number;
  value: PiValue;
  good?: boolean;
  questionable?: boolean;
  substituted?: boolean;
  annotated?: boolean;
}

export interface PiTag {
  path: string;
  name: string;
  webId: string;
  id: number;
  type: PointType;
  units: string;
  /** Digital tags: the user state set, in code order (code = index). */
  digitalSet?: { name: string; states: string[] };
  /** Sorted by ts; events with equal ts keep the order they were added in. */
  events: PiEvent[];
}

/**
 * Some SYSTEM set states. "Pt Created" 253 is from a real response (protocols.md, pisquare thread 37098); the other
 * codes follow the notes' illustration and are [unverified]: a client should read the SYSTEM set, not these numbers.
 */
export const SYSTEM_STATES: Record<string, number> = {
  'I/O Timeout': 246,
  'No Data': 248,
  'Pt Created': 253,
  Shutdown: 254,
  'Bad Input': 307,
};

/** A system state value (Good=false unless the event says otherwise). */
export function systemState(name: string): DigitalState {
  const code = SYSTEM_STATES[name];
  if (code === undefined) throw new Error(`no system state ${name} in the fake's SYSTEM set`);
  return { Name: name, Value: code, IsSystem: true };
}

export const isState = (v: PiValue): v is DigitalState => typeof v === 'object' && 'IsSystem' in v;
export const isErrorValue = (v: PiValue): v is ErrorValue => typeof v === 'object' && 'Errors' in v;

/** `n` events from `start` every `everyMs`, value `f(i)`: a deterministic series a test can recompute. */
export function series(start: number, n: number, everyMs: number, f: (i: number) => PiValue = (i) => i): PiEvent[] {
  return Array.from({ length: n }, (_, i) => ({ ts: start + i * everyMs, value: f(i) }));
}

/** `n` events all at `ts` (values first, first+1, ...): runs longer than a page are how paging by time breaks. */
export const equalRun = (ts: number, n: number, first = 0): PiEvent[] =>
  Array.from({ length: n }, (_, i) => ({ ts, value: first + i }));

/** PI's WebIds are opaque; this one is derived from the path so the same truth always gives the same ids. */
export const webIdOf = (path: string): string => `I1DP${Buffer.from(path.toUpperCase()).toString('base64url')}`;

/**
 * A PI time string to ms [doc: topics/time-strings], the subset the fake needs: ISO 8601 (offset honoured), `*`,
 * `*±N{s,m,h,d,w}`, `t`/`today`, `y` (midnights in UTC: the fake's server time zone is UTC). Else undefined.
 */
export function parsePiTime(s: string, now: number): number | undefined {
  const t = s.trim().toLowerCase();
  const unit: Record<string, number> = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 };
  const midnight = Math.floor(now / 8.64e7) * 8.64e7;
  const base = /^(\*|t|today|y)\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw]))?$/.exec(t);
  if (base) {
    const at = base[1] === '*' ? now : base[1] === 'y' ? midnight - 8.64e7 : midnight;
    if (!base[2]) return at;
    return at + (base[2] === '-' ? -1 : 1) * Number(base[3]) * (unit[base[4] ?? 's'] ?? 1);
  }
  if (!/^\d{4}-\d\d-\d\d/.test(t)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

/** UTC ISO 8601 as PI writes it: `Z`, fraction only when non-zero and without trailing zeros. */
export const piTimestamp = (ms: number): string =>
  new Date(ms).toISOString().replace(/\.(\d*?)0*Z$/, (_, f: string) => (f ? `.${f}Z` : 'Z'));

/** The wire form of one event of `tag` (stream/actions/getrecorded). */
export function encodeEvent(tag: PiTag, e: PiEvent): Record<string, unknown> {
  const bad = isErrorValue(e.value) || (isState(e.value) && e.value.IsSystem);
  let value: PiValue = e.value;
  // A digital tag's truth may name a state of its set; the wire carries the enumeration object.
  if (tag.type === 'Digital' && typeof value === 'string' && tag.digitalSet) {
    const code = tag.digitalSet.states.indexOf(value);
    if (code < 0) throw new Error(`${value} is not a state of ${tag.digitalSet.name}`);
    value = { Name: value, Value: code, IsSystem: false };
  }
  return {
    Timestamp: piTimestamp(e.ts),
    Value: value,
    UnitsAbbreviation: tag.units,
    Good: e.good ?? !bad,
    Questionable: e.questionable ?? false,
    Substituted: e.substituted ?? false,
    Annotated: e.annotated ?? false,
  };
}

/**
 * The recorded events between `start` and `end` [doc: stream/actions/getrecorded, topics/boundary-type]:
 * Inside = every event with start <= ts <= end (both ends inclusive). Outside = those, plus the nearest event before
 * `start` and the nearest after `end` when no event sits exactly on that boundary [unverified: whether PI adds the
 * outside value even when one sits on the boundary]. end < start → time-descending. Then cut to `maxCount`.
 */
export function recorded(
  tag: PiTag,
  start: number,
  end: number,
  boundary: 'Inside' | 'Outside',
  maxCount: number,
): PiEvent[] {
  const [lo, hi] = start <= end ? [start, end] : [end, start];
  const ev = tag.events;
  let from = ev.findIndex((e) => e.ts >= lo);
  if (from < 0) from = ev.length;
  let to = ev.findIndex((e) => e.ts > hi);
  if (to < 0) to = ev.length;
  if (boundary === 'Outside') {
    if (from > 0 && ev[from]?.ts !== lo) from--;
    if (to < ev.length && ev[to - 1]?.ts !== hi) to++;
  }
  const picked = ev.slice(from, to);
  if (start > end) picked.reverse();
  return picked.slice(0, maxCount);
}

/**
 * Keeps only the fields named in `selectedFields` ("Items.Timestamp;Items.Value;WebId") [doc: topics/selected-fields
 * as quoted in protocols.md]; arrays are walked through. No parameter → everything.
 */
export function selectFields(body: unknown, selectedFields: string | null): unknown {
  if (!selectedFields) return body;
  const paths = selectedFields
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => p.split('.'));
  const prune = (v: unknown, wanted: string[][]): unknown => {
    if (Array.isArray(v)) return v.map((x) => prune(x, wanted));
    if (!v || typeof v !== 'object' || wanted.some((w) => w.length === 0)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const sub = wanted.filter((w) => w[0]?.toLowerCase() === k.toLowerCase()).map((w) => w.slice(1));
      if (sub.length) out[k] = prune(x, sub);
    }
    return out;
  };
  return prune(body, paths);
}
