import type { TimeRange } from './backfill.repo.ts';

/** What of [from, to) the sorted, disjoint `fetched` ranges leave out, oldest first. */
export function unfetched(fetched: readonly TimeRange[], from: Date, to: Date): TimeRange[] {
  const out: TimeRange[] = [];
  let cursor = from.getTime();
  const end = to.getTime();
  for (const r of fetched) {
    if (cursor >= end) break;
    const a = r.from.getTime();
    const b = r.to.getTime();
    if (b <= cursor) continue;
    if (a > cursor) out.push({ from: new Date(cursor), to: new Date(Math.min(a, end)) });
    cursor = Math.max(cursor, b);
  }
  if (cursor < end) out.push({ from: new Date(cursor), to: new Date(end) });
  return out;
}
