import { randomUUID } from 'node:crypto';
import { UpstreamError } from '../../../lib/connectors/errors.ts';
import { HUB_ID } from '../../../lib/ids.ts';
import type { WorkOrderRow } from '../../../lib/db/rows.ts';
import { badInput, HubError } from '../../../lib/errors.ts';
import {
  consumptionById,
  markPostingUncertain,
  recordPosting,
  releasePosting,
  reservePosting,
} from './consumption.repo.ts';
import { IDEMPOTENCY_KEY, type Actor, type Integrations } from './service.ts';
import type { MaterialConsumptionRow } from './tables.ts';

export interface GoodsIssueRequest {
  workOrder: WorkOrderRow;
  materialId: string;
  quantity: number;
  unit: string;
  lot?: string | null;
  idempotencyKey?: string | null;
  actor: Actor;
}

/**
 * Posts material consumed by a work order to the ERP as a goods issue (SAP: API_MATERIAL_DOCUMENT_SRV with its
 * CSRF token) and records it as the order's consumption. A goods issue is not idempotent in the ERP, so the key
 * is reserved before the call: the same key with the same request returns the recorded consumption and posts
 * nothing; with another request it is a CONFLICT. A refusal by the ERP frees the key (nothing was posted); a call
 * whose outcome is unknown (timeout, 5xx) leaves the key UNCERTAIN, and a retry with it is refused rather than
 * risking a second goods issue.
 */
export async function reportMaterialConsumption(
  svc: Integrations,
  a: GoodsIssueRequest,
): Promise<MaterialConsumptionRow> {
  const erp = svc.requireErp('postConsumption', 'posting goods issues');
  if (!(Number.isFinite(a.quantity) && a.quantity > 0))
    throw badInput('quantity must be greater than 0', { argument: 'quantity' });
  if (!HUB_ID.test(a.materialId))
    throw badInput('materialId is not a valid material number', { argument: 'materialId' });
  if (!/^[A-Za-z0-9]{1,6}$/.test(a.unit))
    throw badInput('unit must be 1–6 letters or digits (e.g. PC, KG)', { argument: 'unit' });
  const key = a.idempotencyKey ?? randomUUID();
  if (!IDEMPOTENCY_KEY.test(key))
    throw badInput('idempotencyKey must be 8–128 letters, digits or _ . : -', { argument: 'idempotencyKey' });
  const wo = a.workOrder;
  const lot = a.lot ?? null;
  const r = await reservePosting(svc.db, {
    idempotencyKey: key,
    system: erp.system,
    workOrderId: wo.id,
    materialId: a.materialId,
    quantity: a.quantity,
    unit: a.unit,
    lot,
    requestedBy: a.actor.sub,
  });
  if (!r.reserved) {
    const p = r.row;
    const same =
      p.workOrderId === wo.id &&
      p.materialId === a.materialId &&
      Number(p.quantity) === a.quantity &&
      p.unit === a.unit &&
      p.lot === lot;
    if (!same)
      throw new HubError('CONFLICT', 'idempotencyKey was already used for another goods issue; nothing was posted', {
        argument: 'idempotencyKey',
      });
    if (p.state === 'POSTED' && p.consumptionId) return (await consumptionById(svc.db, p.consumptionId))!;
    throw new HubError(
      'CONFLICT',
      p.state === 'POSTING'
        ? 'this goods issue is being posted'
        : `the outcome of this goods issue is unknown (${p.lastError}); ` +
            'check the ERP before posting it again with a new key',
      {
        argument: 'idempotencyKey',
        state: p.state,
      },
    );
  }
  const postedAt = new Date();
  // The ERP books the goods issue on its posting date (a day): the consumption is dated the same, so a later sync of
  // the order's consumption from the ERP finds nothing to change.
  const postingDate = new Date(Math.floor(postedAt.getTime() / 86_400_000) * 86_400_000);
  let documentId: string;
  try {
    // No transaction is open during the call.
    documentId = (
      await erp.postConsumption({
        workOrderNumber: wo.number,
        materialId: a.materialId,
        quantity: a.quantity,
        unit: a.unit,
        lot,
        postedAt,
      })
    ).documentId;
  } catch (e) {
    if (e instanceof UpstreamError && e.rejected) await releasePosting(svc.db, key);
    else await markPostingUncertain(svc.db, key, (e as Error).message);
    throw e;
  }
  // Item 1 of the document: the one item this posting sends (the key sync of consumption from the ERP reads back).
  return recordPosting(svc.db, key, {
    externalId: `${documentId}/1`,
    workOrderId: wo.id,
    workOrderNumber: wo.number,
    system: erp.system,
    documentId,
    materialId: a.materialId,
    quantity: a.quantity,
    unit: a.unit,
    lot,
    consumedAt: postingDate,
  });
}
