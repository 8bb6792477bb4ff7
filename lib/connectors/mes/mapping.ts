import type { FieldMappings } from '../../config/mes.ts';
import { at } from '../http.ts';
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
import type { RecordError, ScheduleRecord, WorkOrderStatus } from './types.ts';

/**
 * One MES JSON record → a ScheduleRecord through the configured field mappings, or the reason it is unusable.
 * `lineId` is the line asked for: a record naming no line belongs to it; one naming another line is refused
 * (an MES that ignores the line filter must not move orders between lines).
 */
export function mapScheduleRecord(
  raw: unknown,
  m: FieldMappings,
  statusMap: Record<string, WorkOrderStatus>,
  lineId: string,
): { record: ScheduleRecord } | { error: RecordError } {
  const key = String(at(raw, m.workOrderNumber) ?? '?');
  try {
    if (!raw || typeof raw !== 'object') throw new RecordProblem('record is not an object');
    const number = text(at(raw, m.workOrderNumber), m.workOrderNumber);
    const line = optionalText(at(raw, m.lineId)) ?? lineId;
    if (line !== lineId)
      throw new RecordProblem(`${m.lineId} ${JSON.stringify(line)} is not the line asked for (${lineId})`);
    const plannedStart = instant(at(raw, m.plannedStart), m.plannedStart);
    const plannedEnd = instant(at(raw, m.plannedEnd), m.plannedEnd);
    if (plannedEnd <= plannedStart) throw new RecordProblem(`${m.plannedEnd} is not after ${m.plannedStart}`);
    const rawStatus = optionalText(at(raw, m.status));
    const status = rawStatus === null ? 'PLANNED' : (statusMap[rawStatus] ?? statusMap[rawStatus.toUpperCase()]);
    if (!status) throw new RecordProblem(`${m.status} ${JSON.stringify(rawStatus)} is not in statusMap`);
    const product = optionalText(at(raw, m.productId));
    const priorityRaw = at(raw, m.priority);
    const priority =
      priorityRaw === undefined || priorityRaw === null || priorityRaw === ''
        ? 5
        : wholeQuantity(priorityRaw, m.priority);
    if (priority < 1 || priority > 10) throw new RecordProblem(`${m.priority} ${priority} is not between 1 and 10`);
    const actualStart = optionalInstant(at(raw, m.actualStart), m.actualStart);
    const actualEnd = optionalInstant(at(raw, m.actualEnd), m.actualEnd);
    if (actualStart && actualEnd && actualEnd < actualStart)
      throw new RecordProblem(`${m.actualEnd} is before ${m.actualStart}`);
    return {
      record: {
        number,
        lineId,
        productId: product === null ? null : hubId(product, m.productId),
        recipeCode: optionalText(at(raw, m.recipeCode)),
        plannedStart,
        plannedEnd,
        plannedQuantity: wholeQuantity(at(raw, m.plannedQuantity), m.plannedQuantity),
        actualQuantity: optionalWholeQuantity(at(raw, m.actualQuantity), m.actualQuantity),
        actualStart,
        actualEnd,
        status,
        priority,
      },
    };
  } catch (e) {
    if (e instanceof RecordProblem) return { error: { key, message: e.message } };
    throw e;
  }
}

/** Our status in the MES's vocabulary: the first statusMap key that maps to it. */
export function mesStatus(statusMap: Record<string, WorkOrderStatus>, status: WorkOrderStatus): string {
  return Object.entries(statusMap).find(([, v]) => v === status)?.[0] ?? status;
}
