import { describe, expect, it } from 'vitest';
import { describeOracleError, mapOracleWorkOrder, oracleString } from '../../lib/connectors/erp/oracle-format.ts';

const base = {
  WorkOrderId: 1,
  WorkOrderNumber: 'M1-1208',
  WorkAreaCode: 'WA-1',
  ItemNumber: 'AS54888',
  PlannedStartQuantity: 10,
  CompletedQuantity: 0,
  PlannedStartDate: '2030-01-01T06:00:00+00:00',
  PlannedCompletionDate: '2030-01-01T14:00:00+00:00',
  WorkOrderSystemStatusCode: 'RELEASED',
};
const map = (o: Record<string, unknown>) =>
  mapOracleWorkOrder({ ...base, ...o }, 'LINE-1', 'WorkAreaCode', { 'WA-1': 'LINE-1', 'WA-2': 'LINE-2' });

describe('Oracle workOrders item → work order', () => {
  it('maps a released order and its status codes', () => {
    expect(map({})).toEqual({
      record: {
        number: 'M1-1208',
        lineId: 'LINE-1',
        productId: 'AS54888',
        recipeCode: null,
        plannedStart: new Date('2030-01-01T06:00:00Z'),
        plannedEnd: new Date('2030-01-01T14:00:00Z'),
        plannedQuantity: 10,
        actualQuantity: 0,
        actualStart: null,
        actualEnd: null,
        status: 'PLANNED',
        priority: 5,
      },
    });
    expect((map({ CompletedQuantity: 3 }) as any).record.status).toBe('ACTIVE');
    expect(
      (map({ WorkOrderSystemStatusCode: undefined, WorkOrderStatusCode: 'ORA_COMPLETED' }) as any).record.status,
    ).toBe('COMPLETED');
    expect((map({ WorkOrderSystemStatusCode: 'CANCELED' }) as any).record.status).toBe('CANCELLED');
    expect((map({ WorkOrderPriority: 3 }) as any).record.priority).toBe(3);
    expect((map({ WorkOrderPriority: 50 }) as any).record.priority).toBe(5);
  });

  it('reports what it cannot use', () => {
    expect(map({ WorkAreaCode: 'WA-2' })).toEqual({
      error: { key: 'M1-1208', message: 'WorkAreaCode "WA-2" is not mapped to the line asked for (LINE-1)' },
    });
    expect(map({ WorkOrderSystemStatusCode: 'PENDING_APPROVAL' })).toMatchObject({
      error: { message: 'status "PENDING_APPROVAL" is not a known work order status' },
    });
    expect(map({ PlannedStartQuantity: 2.5 })).toMatchObject({
      error: { message: expect.stringMatching(/not a whole number/) },
    });
    expect(map({ PlannedCompletionDate: base.PlannedStartDate })).toMatchObject({
      error: { message: 'PlannedCompletionDate is not after PlannedStartDate' },
    });
  });

  it('quotes q literals and reads the error body', () => {
    expect(oracleString("O'Brien")).toBe("'O''Brien'");
    expect(
      describeOracleError(
        JSON.stringify({ title: 'Bad Request', 'o:errorDetails': [{ detail: 'bad q', 'o:errorCode': 'RFW-1' }] }),
      ),
    ).toEqual({ message: 'bad q', upstreamCode: 'RFW-1' });
    expect(describeOracleError('Unauthorized')).toEqual({ message: 'Unauthorized' });
    expect(describeOracleError('<html/>')).toBeUndefined();
  });
});
