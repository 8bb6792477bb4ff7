import { hubId, instant, optionalText, RecordProblem, wholeQuantity } from '../values.ts';
import { childOf, childrenOf, descendants, esc, parseXml, textAt, type XmlElement } from '../xml.ts';
import type { RecordError, ScheduleRecord, WorkOrderStatus } from './types.ts';

/**
 * B2MML V0600 (reference/protocols.md §4) as the SOAP MES speaks it: GetProductionSchedule out (the wanted line
 * and window as a ProductionSchedule template), ShowProductionSchedule in, ProcessProductionPerformance out
 * (one order's status and produced quantity), AcknowledgeProductionPerformance in. Pure functions: no I/O.
 * Child elements are written in the order of the XSD sequences; reading goes by namespace URI, never by prefix.
 */
export const B2MML_NS = 'http://www.mesa.org/xml/B2MML-V0600';
const N = B2MML_NS;

export interface ScheduleQuery {
  /** The MES's equipment id of the line (HierarchyScope/EquipmentID); none when asking for one request by ID. */
  lineValue?: string;
  from?: Date;
  to?: Date;
  /** Ask for one ProductionRequest only. */
  workOrderNumber?: string;
  sender: string;
  messageId: string;
  createdAt: Date;
}

const iso = (d: Date) => d.toISOString();
const el = (name: string, content: string | undefined | null) =>
  content === undefined || content === null ? '' : `<${name}>${content}</${name}>`;
const txt = (name: string, v: string | undefined | null) => (v === undefined || v === null ? '' : el(name, esc(v)));

function applicationArea(sender: string, messageId: string, createdAt: Date): string {
  // TransApplicationAreaType: Sender, Receiver*, CreationDateTime, Signature, BODID, UserArea.
  return el(
    'ApplicationArea',
    el('Sender', txt('LogicalID', sender)) + txt('CreationDateTime', iso(createdAt)) + txt('BODID', messageId),
  );
}

const hierarchyScope = (equipmentId: string) =>
  el('HierarchyScope', txt('EquipmentID', equipmentId) + txt('EquipmentElementLevel', 'ProductionLine'));

/**
 * GetProductionSchedule: the ProductionSchedule in the DataArea is the selection (line, window, optionally one
 * request).
 */
export function buildGetProductionSchedule(q: ScheduleQuery): string {
  // ProductionSchedule sequence: ID, Description*, Location, HierarchyScope, PublishedDate, StartTime, EndTime, ...,
  // ProductionRequest*.
  const schedule = el(
    'ProductionSchedule',
    (q.lineValue ? hierarchyScope(q.lineValue) : '') +
      txt('StartTime', q.from && iso(q.from)) +
      txt('EndTime', q.to && iso(q.to)) +
      (q.workOrderNumber ? el('ProductionRequest', txt('ID', q.workOrderNumber)) : ''),
  );
  return (
    `<GetProductionSchedule xmlns="${N}" releaseID="6.0">${applicationArea(q.sender, q.messageId, q.createdAt)}` +
    `${el('DataArea', `<Get/>${schedule}`)}</GetProductionSchedule>`
  );
}

export interface PerformanceReport {
  /** The report's idempotency key: ProductionPerformance/ID, the same on every retry, so the MES applies it once. */
  id: string;
  workOrderNumber: string;
  lineValue: string;
  /** ResponseState in the MES's vocabulary (mes.yml statusMap). */
  state: string;
  actualQuantity: number;
  actualStart: Date | null;
  actualEnd: Date | null;
  publishedAt: Date;
  sender: string;
}

/**
 * ProcessProductionPerformance with one ProductionResponse for the order. The hub knows the order's total, not
 * per-segment actuals, so it reports one SegmentResponse whose produced MaterialActual carries the quantity.
 */
export function buildProcessProductionPerformance(r: PerformanceReport): string {
  // MaterialActual: MaterialClassID*, MaterialDefinitionID*, MaterialLotID*, ..., MaterialUse, Quantity*.
  const material = el(
    'MaterialActual',
    txt('MaterialUse', 'Produced') + el('Quantity', txt('QuantityString', String(r.actualQuantity))),
  );
  // SegmentResponse: ID, ProcessSegmentID*, ProductSegmentID*, Description*, Location, HierarchyScope, ActualStartTime,
  // ActualEndTime, ..., MaterialActual*.
  const segment = el(
    'SegmentResponse',
    txt('ID', '1') +
      txt('ActualStartTime', r.actualStart && iso(r.actualStart)) +
      txt('ActualEndTime', r.actualEnd && iso(r.actualEnd)) +
      material,
  );
  // ProductionResponse: ID, ProductionRequestID, ProductProductionRuleID*, Version*, Location, HierarchyScope,
  // StartTime, EndTime, SegmentResponse*, ResponseState.
  const response = el(
    'ProductionResponse',
    txt('ID', r.id) +
      txt('ProductionRequestID', r.workOrderNumber) +
      hierarchyScope(r.lineValue) +
      txt('StartTime', r.actualStart && iso(r.actualStart)) +
      txt('EndTime', r.actualEnd && iso(r.actualEnd)) +
      segment +
      txt('ResponseState', r.state),
  );
  // ProductionPerformance: ID, Description*, Location, HierarchyScope, PublishedDate, ProductionScheduleID, StartTime,
  // EndTime, ..., ProductionResponse*.
  const performance = el(
    'ProductionPerformance',
    txt('ID', r.id) + hierarchyScope(r.lineValue) + txt('PublishedDate', iso(r.publishedAt)) + response,
  );
  return (
    `<ProcessProductionPerformance xmlns="${N}" releaseID="6.0">${applicationArea(r.sender, r.id, r.publishedAt)}` +
    `${el('DataArea', `<Process/>${performance}`)}</ProcessProductionPerformance>`
  );
}

/** The ProductionSchedule elements of an answer (a SOAP envelope or a bare B2MML document). */
export function readProductionSchedules(xml: string): XmlElement[] {
  const root = parseXml(xml);
  const schedules = descendants(root, N, 'ProductionSchedule');
  if (!schedules.length && !descendants(root, N, 'ShowProductionSchedule').length) {
    throw new RecordProblem(`the answer holds no B2MML V0600 ProductionSchedule (namespace ${N})`);
  }
  return schedules;
}

/** The equipment a HierarchyScope (or Location) names: the innermost, most specific level. */
function innermostEquipment(scope: XmlElement | undefined, name: 'HierarchyScope' | 'Location'): string | undefined {
  let found: string | undefined;
  for (let cur = scope; cur; cur = childOf(cur, N, name)) found = textAt(cur, N, 'EquipmentID') ?? found;
  return found;
}

export function equipmentOf(e: XmlElement): string | undefined {
  return (
    innermostEquipment(childOf(e, N, 'HierarchyScope'), 'HierarchyScope') ??
    innermostEquipment(childOf(e, N, 'Location'), 'Location')
  );
}

export interface RequestContext {
  /** The line asked for; null: take it from the document (a single work order lookup). */
  lineId: string | null;
  /** MES equipment ids → our line ids (unlisted ids are taken as they are). */
  lineMap: Record<string, string>;
  statusMap: Record<string, WorkOrderStatus>;
}

const isProduced = (m: XmlElement) => (textAt(m, N, 'MaterialUse') ?? '').toLowerCase() === 'produced';

/**
 * One ProductionRequest → a work order: ID is the number; the window is the earliest EarliestStartTime and the
 * latest LatestEndTime of its SegmentRequirements (else the request's own StartTime/EndTime); the product and
 * quantity come from the MaterialRequirement whose MaterialUse is Produced (the product falls back to
 * ProductProductionRuleID, which is also the recipe code); RequestState goes through statusMap.
 */
export function mapProductionRequest(
  req: XmlElement,
  schedule: XmlElement,
  ctx: RequestContext,
): { record: ScheduleRecord } | { error: RecordError } {
  const key = textAt(req, N, 'ID') ?? '?';
  try {
    const number = textAt(req, N, 'ID');
    if (!number) throw new RecordProblem('ProductionRequest has no ID');
    const equipment = equipmentOf(req) ?? equipmentOf(schedule);
    const line = equipment !== undefined ? (ctx.lineMap[equipment] ?? equipment) : ctx.lineId;
    if (!line) throw new RecordProblem('ProductionRequest names no line (HierarchyScope/EquipmentID)');
    if (ctx.lineId !== null && line !== ctx.lineId)
      throw new RecordProblem(`HierarchyScope ${JSON.stringify(equipment)} is not the line asked for (${ctx.lineId})`);

    const segments = descendants(req, N, 'SegmentRequirement');
    const times = (name: string) =>
      segments
        .map((s) => textAt(s, N, name))
        .filter((t): t is string => !!t)
        .map((t) => instant(t, `SegmentRequirement/${name}`).getTime());
    const starts = times('EarliestStartTime');
    const ends = times('LatestEndTime');
    const ownStart = textAt(req, N, 'StartTime');
    const ownEnd = textAt(req, N, 'EndTime');
    if (!starts.length && !ownStart)
      throw new RecordProblem('no EarliestStartTime in a SegmentRequirement and no StartTime');
    if (!ends.length && !ownEnd) throw new RecordProblem('no LatestEndTime in a SegmentRequirement and no EndTime');
    const plannedStart = starts.length
      ? new Date(Math.min(...starts))
      : instant(ownStart, 'ProductionRequest/StartTime');
    const plannedEnd = ends.length ? new Date(Math.max(...ends)) : instant(ownEnd, 'ProductionRequest/EndTime');
    if (plannedEnd <= plannedStart) throw new RecordProblem('the latest end is not after the earliest start');

    const rule = optionalText(textAt(req, N, 'ProductProductionRuleID'));
    const produced = segments.flatMap((s) => childrenOf(s, N, 'MaterialRequirement')).filter(isProduced);
    const product = optionalText(textAt(produced[0], N, 'MaterialDefinitionID')) ?? rule;
    // Several segments may each produce the finished material (a route): the order's quantity is the largest, not their
    // sum.
    const quantities = produced
      .filter((m) => (textAt(m, N, 'MaterialDefinitionID') ?? product) === product)
      .map((m) => textAt(m, N, 'Quantity', 'QuantityString'))
      .filter((q): q is string => q !== undefined)
      .map((q) => wholeQuantity(q, 'MaterialRequirement/Quantity/QuantityString'));
    if (!quantities.length)
      throw new RecordProblem('no MaterialRequirement with MaterialUse Produced gives a Quantity');

    const rawState = textAt(req, N, 'RequestState');
    const status =
      rawState === undefined ? 'PLANNED' : (ctx.statusMap[rawState] ?? ctx.statusMap[rawState.toUpperCase()]);
    if (!status) throw new RecordProblem(`RequestState ${JSON.stringify(rawState)} is not in statusMap`);
    const rawPriority = textAt(req, N, 'Priority');
    const priority = rawPriority === undefined ? 5 : wholeQuantity(rawPriority, 'Priority');
    if (priority < 1 || priority > 10) throw new RecordProblem(`Priority ${priority} is not between 1 and 10`);
    return {
      record: {
        number,
        lineId: line,
        productId: product === null ? null : hubId(product, 'MaterialDefinitionID'),
        recipeCode: rule,
        plannedStart,
        plannedEnd,
        plannedQuantity: Math.max(...quantities),
        actualQuantity: null,
        actualStart: null,
        actualEnd: null,
        status,
        priority,
      },
    };
  } catch (e) {
    if (e instanceof RecordProblem) return { error: { key, message: e.message } };
    throw e;
  }
}

/** Every ProductionRequest of every ProductionSchedule in an answer, mapped. */
export function mapScheduleAnswer(
  xml: string,
  ctx: RequestContext,
): { records: ScheduleRecord[]; errors: RecordError[] } {
  const out = { records: [] as ScheduleRecord[], errors: [] as RecordError[] };
  for (const s of readProductionSchedules(xml)) {
    for (const req of childrenOf(s, N, 'ProductionRequest')) {
      const m = mapProductionRequest(req, s, ctx);
      if ('record' in m) out.records.push(m.record);
      else out.errors.push(m.error);
    }
  }
  return out;
}

/**
 * AcknowledgeProductionPerformance [unverified: TransAcknowledgeType's ResponseCriteria/ResponseExpression
 * actionCode, as OAGIS]: `Rejected` is a refusal with the ChangeStatus description as its reason; anything else
 * (Accepted, Modified, or no criteria at all) is acceptance.
 */
export function readAcknowledge(xml: string): { accepted: true } | { accepted: false; reason: string } {
  const root = parseXml(xml);
  const ack = descendants(root, N, 'AcknowledgeProductionPerformance')[0];
  if (!ack)
    throw new RecordProblem(`the answer holds no B2MML V0600 AcknowledgeProductionPerformance (namespace ${N})`);
  for (const c of descendants(ack, N, 'ResponseCriteria')) {
    const action = childOf(c, N, 'ResponseExpression')?.attrs.actionCode;
    if (action?.toLowerCase() === 'rejected') {
      return {
        accepted: false,
        reason:
          textAt(c, N, 'ChangeStatus', 'Description') ??
          textAt(c, N, 'ChangeStatus', 'ReasonCode') ??
          'no reason given',
      };
    }
  }
  return { accepted: true };
}
