import { at } from '../http.ts';
import type { RecordError, ScheduleRecord, WorkOrderStatus } from '../mes/types.ts';
import {
  hubId,
  instant,
  optionalInstant,
  optionalText,
  optionalWholeQuantity,
  RecordProblem,
  text,
  wholeQuantity,
} from '../values.ts';

/**
 * Oracle Fusion REST wire details: the work order's fields, its status codes, `q` literals and the error body.
 * [unverified] field names beyond those protocols.md lists, from Oracle's workOrders resource documentation:
 * WorkOrderId, WorkOrderNumber, ItemNumber, PlannedStartQuantity, CompletedQuantity, PlannedStartDate,
 * PlannedCompletionDate, ActualStartDate, ActualCompletionDate, WorkOrderSystemStatusCode (UNRELEASED, RELEASED,
 * ON_HOLD, COMPLETED, CLOSED, CANCELED), WorkOrderStatusCode (ORA_-prefixed), WorkOrderPriority.
 */

/** A string literal in a `q` row-match expression ('' doubles a quote). */
export const oracleString = (s: string) => `'${s.replace(/'/g, "''")}'`;

const STATUS: Record<string, WorkOrderStatus> = {
  UNRELEASED: 'PLANNED',
  RELEASED: 'PLANNED',
  ON_HOLD: 'ACTIVE',
  COMPLETED: 'COMPLETED',
  CLOSED: 'COMPLETED',
  CANCELED: 'CANCELLED',
  CANCELLED: 'CANCELLED',
};

/** One workOrders item → a work order of `lineId`, or why it is unusable. */
export function mapOracleWorkOrder(
  raw: unknown,
  lineId: string,
  lineField: string,
  lineMap: Record<string, string>,
): { record: ScheduleRecord } | { error: RecordError } {
  const key = String(at(raw, 'WorkOrderNumber') ?? at(raw, 'WorkOrderId') ?? '?');
  try {
    if (!raw || typeof raw !== 'object') throw new RecordProblem('item is not an object');
    const number = text(at(raw, 'WorkOrderNumber'), 'WorkOrderNumber');
    const lineValue = optionalText(at(raw, lineField));
    // An ERP that ignored the line filter must not move orders between lines.
    if (lineValue !== null && lineMap[lineValue] !== lineId)
      throw new RecordProblem(
        `${lineField} ${JSON.stringify(lineValue)} is not mapped to the line asked for (${lineId})`,
      );
    const plannedStart = instant(at(raw, 'PlannedStartDate'), 'PlannedStartDate');
    const plannedEnd = instant(at(raw, 'PlannedCompletionDate'), 'PlannedCompletionDate');
    if (plannedEnd <= plannedStart) throw new RecordProblem('PlannedCompletionDate is not after PlannedStartDate');
    const completed = optionalWholeQuantity(at(raw, 'CompletedQuantity'), 'CompletedQuantity');
    const actualStart = optionalInstant(at(raw, 'ActualStartDate'), 'ActualStartDate');
    const rawStatus =
      optionalText(at(raw, 'WorkOrderSystemStatusCode')) ??
      optionalText(at(raw, 'WorkOrderStatusCode'))?.replace(/^ORA_/, '') ??
      null;
    let status = rawStatus === null ? 'PLANNED' : STATUS[rawStatus.toUpperCase()];
    if (!status) throw new RecordProblem(`status ${JSON.stringify(rawStatus)} is not a known work order status`);
    // A released order that has started or reported output is running.
    if (status === 'PLANNED' && (actualStart || (completed ?? 0) > 0)) status = 'ACTIVE';
    const item = optionalText(at(raw, 'ItemNumber'));
    const p = at(raw, 'WorkOrderPriority');
    // Oracle priorities have no fixed scale: only whole values 1..10 carry over, anything else is our default.
    const priority = typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 10 ? p : 5;
    return {
      record: {
        number,
        lineId,
        productId: item === null ? null : hubId(item, 'ItemNumber'),
        recipeCode: null,
        plannedStart,
        plannedEnd,
        plannedQuantity: wholeQuantity(at(raw, 'PlannedStartQuantity'), 'PlannedStartQuantity'),
        actualQuantity: completed,
        actualStart,
        actualEnd: optionalInstant(at(raw, 'ActualCompletionDate'), 'ActualCompletionDate'),
        status,
        priority,
      },
    };
  } catch (e) {
    if (e instanceof RecordProblem) return { error: { key, message: e.message } };
    throw e;
  }
}

/** The fields of Oracle's JSON error body that are read (an `o:errorDetails` entry has the same shape). */
interface OracleErrorJson {
  title?: unknown;
  detail?: unknown;
  'o:errorCode'?: string;
  'o:errorDetails'?: unknown;
}

/** Oracle's error body (`title`, `detail`, `o:errorCode`, `o:errorDetails[]`), or its plain text. */
export function describeOracleError(body: string): { message: string; upstreamCode?: string } | undefined {
  try {
    const e = JSON.parse(body) as OracleErrorJson;
    const d = Array.isArray(e['o:errorDetails']) ? (e['o:errorDetails'][0] as OracleErrorJson | undefined) : undefined;
    const message = d?.detail ?? e.detail ?? e.title;
    if (message) return { message: String(message), upstreamCode: d?.['o:errorCode'] ?? e['o:errorCode'] };
  } catch {
    const t = body.trim();
    if (t && !t.startsWith('<')) return { message: t.slice(0, 200) };
  }
  return undefined;
}
