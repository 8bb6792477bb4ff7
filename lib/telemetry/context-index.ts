/**
 * Production context per line as sorted intervals, so enrichment is a binary search per reading instead of
 * a query. Rebuilt whole when production data changes (NOTIFY hub_changes); schedules are small (weeks of
 * work orders and shifts per line), so a rebuild costs milliseconds.
 */
export interface OrderInterval {
  start: number;
  end: number;
  workOrderId: string;
  recipeId: string | null;
  productId: string | null;
  /**
   * Lower sorts first when two orders overlap: actual (ACTIVE/COMPLETED with actual times) before planned, then
   * priority.
   */
  rank: number;
}
export interface ShiftInterval {
  start: number;
  end: number;
  shiftId: string;
  operatorId: string;
}
export interface Context {
  workOrderId: string | null;
  recipeId: string | null;
  shiftId: string | null;
  operatorId: string | null;
}

const NONE: Context = { workOrderId: null, recipeId: null, shiftId: null, operatorId: null };

interface Sorted<T> {
  list: T[];
  /** The longest interval: no interval starting earlier than ts - maxLen can contain ts. */
  maxLen: number;
}
interface LineIndex {
  orders: Sorted<OrderInterval>;
  shifts: Sorted<ShiftInterval>;
}

export class ContextIndex {
  private lines = new Map<string, LineIndex>();
  version = 0;

  replace(orders: (OrderInterval & { lineId: string })[], shifts: (ShiftInterval & { lineId: string })[]): void {
    const lines = new Map<string, LineIndex>();
    const get = (id: string) => {
      let l = lines.get(id);
      if (!l) {
        l = { orders: { list: [], maxLen: 0 }, shifts: { list: [], maxLen: 0 } };
        lines.set(id, l);
      }
      return l;
    };
    for (const o of orders) add(get(o.lineId).orders, o);
    for (const s of shifts) add(get(s.lineId).shifts, s);
    for (const l of lines.values()) {
      l.orders.list.sort((a, b) => a.start - b.start);
      l.shifts.list.sort((a, b) => a.start - b.start);
    }
    this.lines = lines;
    this.version++;
  }

  lookup(lineId: string, ts: number): Context {
    const l = this.lines.get(lineId);
    if (!l) return NONE;
    const order = best(covering(l.orders, ts), (a, b) => a.rank - b.rank);
    // Several operators may share a shift; the reading is attributed to the one who started first.
    const shift = covering(l.shifts, ts)[0];
    return {
      workOrderId: order?.workOrderId ?? null,
      recipeId: order?.recipeId ?? null,
      shiftId: shift?.shiftId ?? null,
      operatorId: shift?.operatorId ?? null,
    };
  }
}

function add<T extends { start: number; end: number }>(s: Sorted<T>, x: T): void {
  s.list.push(x);
  s.maxLen = Math.max(s.maxLen, x.end - x.start);
}

/** Intervals that contain ts: binary search for the last start ≤ ts, then back while a start is near enough. */
function covering<T extends { start: number; end: number }>({ list, maxLen }: Sorted<T>, ts: number): T[] {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.start <= ts) lo = mid + 1;
    else hi = mid;
  }
  const out: T[] = [];
  for (let i = lo - 1; i >= 0 && ts - list[i]!.start < maxLen; i--) {
    if (list[i]!.end > ts) out.push(list[i]!);
  }
  return out.reverse();
}

function best<T>(xs: T[], cmp: (a: T, b: T) => number): T | undefined {
  let b: T | undefined;
  for (const x of xs) if (!b || cmp(x, b) < 0) b = x;
  return b;
}
