import { describe, expect, it } from 'vitest';
import {
  B2MML_NS,
  buildGetProductionSchedule,
  buildProcessProductionPerformance,
  mapScheduleAnswer,
  readAcknowledge,
  type RequestContext,
} from '../../lib/connectors/mes/b2mml.ts';
import { describeSoapFault } from '../../lib/connectors/mes/soap-transport.ts';
import { childOf, parseXml, textAt } from '../../lib/connectors/xml.ts';
import { RecordProblem } from '../../lib/connectors/values.ts';

const STATUS: RequestContext['statusMap'] = {
  Released: 'PLANNED',
  Running: 'ACTIVE',
  Completed: 'COMPLETED',
  Aborted: 'CANCELLED',
};
const ctx = (
  lineId: string | null = 'LINE-1',
  lineMap: Record<string, string> = { L01: 'LINE-1' },
): RequestContext => ({ lineId, lineMap, statusMap: STATUS });

// The ProductionSchedule example of reference/protocols.md §4, with a HierarchyScope naming the line.
const PROTOCOLS_EXAMPLE = `<ProductionSchedule xmlns="http://www.mesa.org/xml/B2MML-V0600">
  <ID>PS-2024-0501</ID><HierarchyScope><EquipmentID>L01</EquipmentID></HierarchyScope>
    <PublishedDate>2024-04-30T18:00:00Z</PublishedDate>
  <ProductionRequest><ID>1000123</ID><ProductProductionRuleID>FG-PUMP-10</ProductProductionRuleID>
    <SegmentRequirement><ID>0010</ID><ProcessSegmentID>ASSEMBLY</ProcessSegmentID>
      <EarliestStartTime>2024-05-01T06:00:00Z</EarliestStartTime><LatestEndTime>2024-05-02T06:00:00Z</LatestEndTime>
      <MaterialRequirement><MaterialDefinitionID>FG-PUMP-10</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>
        <Quantity><QuantityString>480</QuantityString><UnitOfMeasure>PC</UnitOfMeasure></Quantity></MaterialRequirement>
      <MaterialRequirement><MaterialDefinitionID>CASTING-7</MaterialDefinitionID><MaterialUse>Consumed</MaterialUse>
        <Quantity><QuantityString>480</QuantityString><UnitOfMeasure>PC</UnitOfMeasure></Quantity></MaterialRequirement>
    </SegmentRequirement></ProductionRequest>
</ProductionSchedule>`;

describe('B2MML ProductionSchedule → work orders', () => {
  it(`maps the protocols.md example: ID, product, window from the SegmentRequirement, produced quantity, \
default status`, () => {
    const { records, errors } = mapScheduleAnswer(PROTOCOLS_EXAMPLE, ctx());
    expect(errors).toEqual([]);
    expect(records).toEqual([
      {
        number: '1000123',
        lineId: 'LINE-1',
        productId: 'FG-PUMP-10',
        recipeCode: 'FG-PUMP-10',
        plannedStart: new Date('2024-05-01T06:00:00Z'),
        plannedEnd: new Date('2024-05-02T06:00:00Z'),
        plannedQuantity: 480,
        actualQuantity: null,
        actualStart: null,
        actualEnd: null,
        status: 'PLANNED',
        priority: 5,
      },
    ]);
  });

  it('reads by namespace, not prefix: a SOAP envelope with b2: elements and a prefix redeclared inside', () => {
    const xml = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <b2:ShowProductionSchedule xmlns:b2="${B2MML_NS}"><b2:DataArea><b2:Show/><b2:ProductionSchedule>
        <b2:ProductionRequest><b2:ID>WO-1</b2:ID>
          <b2:HierarchyScope><b2:EquipmentID>SITE</b2:EquipmentID><b2:HierarchyScope>
            <b2:EquipmentID>L01</b2:EquipmentID></b2:HierarchyScope></b2:HierarchyScope>
          <b2:Priority>3</b2:Priority>
          <x:SegmentRequirement xmlns:x="${B2MML_NS}"><x:ID>1</x:ID>
            <x:EarliestStartTime>2030-01-01T06:00:00Z</x:EarliestStartTime>
            <x:LatestEndTime>2030-01-01T08:00:00Z</x:LatestEndTime></x:SegmentRequirement>
          <SegmentRequirement xmlns="${B2MML_NS}"><ID>2</ID><EarliestStartTime>2030-01-01T08:00:00Z</EarliestStartTime>
            <LatestEndTime>2030-01-01T14:00:00Z</LatestEndTime>
            <MaterialRequirement><MaterialDefinitionID>P-1</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>
              <Quantity><QuantityString>200</QuantityString></Quantity></MaterialRequirement>
            <MaterialRequirement xmlns="urn:vendor"><MaterialDefinitionID>NOT-B2MML</MaterialDefinitionID>
              <MaterialUse>Produced</MaterialUse><Quantity><QuantityString>999</QuantityString></Quantity>
              </MaterialRequirement>
          </SegmentRequirement>
          <b2:RequestState>Running</b2:RequestState>
        </b2:ProductionRequest></b2:ProductionSchedule></b2:DataArea></b2:ShowProductionSchedule>
      </s:Body></s:Envelope>`;
    const { records, errors } = mapScheduleAnswer(xml, ctx());
    expect(errors).toEqual([]);
    expect(records[0]).toMatchObject({
      number: 'WO-1',
      lineId: 'LINE-1',
      productId: 'P-1',
      recipeCode: null,
      plannedStart: new Date('2030-01-01T06:00:00Z'),
      plannedEnd: new Date('2030-01-01T14:00:00Z'),
      plannedQuantity: 200,
      status: 'ACTIVE',
      priority: 3,
    });
  });

  it('falls back to the request StartTime/EndTime, and reports unusable requests by key', () => {
    const req = (id: string, inner: string) => `<ProductionRequest><ID>${id}</ID>${inner}</ProductionRequest>`;
    const produced =
      `<SegmentRequirement><ID>1</ID><MaterialRequirement><MaterialDefinitionID>P</MaterialDefinitionID>` +
      `<MaterialUse>Produced</MaterialUse><Quantity><QuantityString>5</QuantityString></Quantity>` +
      `</MaterialRequirement></SegmentRequirement>`;
    const xml = `<ProductionSchedule xmlns="${B2MML_NS}">
      ${req('OK', `<StartTime>2030-01-01T00:00:00Z</StartTime><EndTime>2030-01-01T01:00:00Z</EndTime>${produced}`)}
      ${req('NO-TIME', produced)}
      ${req(
        'BAD-QTY',
        `<StartTime>2030-01-01T00:00:00Z</StartTime><EndTime>2030-01-01T01:00:00Z</EndTime><SegmentRequirement>` +
          `<MaterialRequirement><MaterialDefinitionID>P</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>` +
          `<Quantity><QuantityString>4.5</QuantityString></Quantity></MaterialRequirement></SegmentRequirement>`,
      )}
      ${req(
        'OTHER-LINE',
        `<HierarchyScope><EquipmentID>L02</EquipmentID></HierarchyScope>` +
          `<StartTime>2030-01-01T00:00:00Z</StartTime><EndTime>2030-01-01T01:00:00Z</EndTime>${produced}`,
      )}
      ${req(
        'ABORTED',
        `<StartTime>2030-01-01T00:00:00Z</StartTime><EndTime>2030-01-01T01:00:00Z</EndTime>` +
          `${produced}<RequestState>Aborted</RequestState>`,
      )}
    </ProductionSchedule>`;
    const { records, errors } = mapScheduleAnswer(xml, ctx());
    expect(records.map((r) => [r.number, r.status, r.lineId])).toEqual([
      ['OK', 'PLANNED', 'LINE-1'],
      ['ABORTED', 'CANCELLED', 'LINE-1'],
    ]);
    expect(Object.fromEntries(errors.map((e) => [e.key, e.message]))).toEqual({
      'NO-TIME': 'no EarliestStartTime in a SegmentRequirement and no StartTime',
      'BAD-QTY': 'MaterialRequirement/Quantity/QuantityString "4.5" is not a whole number',
      'OTHER-LINE': 'HierarchyScope "L02" is not the line asked for (LINE-1)',
    });
  });

  it('takes the line from the document when none is asked for, and needs one then', () => {
    const one = (scope: string) =>
      `<ProductionSchedule xmlns="${B2MML_NS}"><ProductionRequest><ID>X</ID>` +
      `${scope}<StartTime>2030-01-01T00:00:00Z</StartTime><EndTime>2030-01-01T01:00:00Z</EndTime>` +
      `<SegmentRequirement><MaterialRequirement><MaterialDefinitionID>P</MaterialDefinitionID>` +
      `<MaterialUse>Produced</MaterialUse><Quantity><QuantityString>1</QuantityString></Quantity>` +
      `</MaterialRequirement></SegmentRequirement></ProductionRequest></ProductionSchedule>`;
    expect(
      mapScheduleAnswer(one('<HierarchyScope><EquipmentID>L01</EquipmentID></HierarchyScope>'), ctx(null)).records[0]!
        .lineId,
    ).toBe('LINE-1');
    expect(
      mapScheduleAnswer(one('<Location><EquipmentID>LINE-7</EquipmentID></Location>'), ctx(null)).records[0]!.lineId,
    ).toBe('LINE-7');
    expect(mapScheduleAnswer(one(''), ctx(null)).errors[0]!.message).toMatch(/names no line/);
  });

  it('refuses another B2MML version and malformed XML', () => {
    expect(() =>
      mapScheduleAnswer(PROTOCOLS_EXAMPLE.replace(B2MML_NS, 'http://www.wbf.org/xml/B2MML-V0401'), ctx()),
    ).toThrow(/no B2MML V0600 ProductionSchedule/);
    expect(() => mapScheduleAnswer(PROTOCOLS_EXAMPLE.slice(0, 200), ctx())).toThrow(RecordProblem);
  });
});

describe('B2MML documents the hub sends', () => {
  it('GetProductionSchedule carries the selection in XSD order', () => {
    const xml = buildGetProductionSchedule({
      lineValue: 'L&1',
      from: new Date('2030-01-01T00:00:00Z'),
      to: new Date('2030-01-02T00:00:00Z'),
      sender: 'HUB',
      messageId: 'm-1',
      createdAt: new Date('2029-12-31T00:00:00Z'),
    });
    const root = parseXml(xml);
    expect([root.ns, root.name]).toEqual([B2MML_NS, 'GetProductionSchedule']);
    expect(root.children.map((c) => c.name)).toEqual(['ApplicationArea', 'DataArea']);
    const ps = childOf(childOf(root, B2MML_NS, 'DataArea'), B2MML_NS, 'ProductionSchedule')!;
    expect(ps.children.map((c) => c.name)).toEqual(['HierarchyScope', 'StartTime', 'EndTime']);
    expect(textAt(ps, B2MML_NS, 'HierarchyScope', 'EquipmentID')).toBe('L&1');
    expect(textAt(root, B2MML_NS, 'ApplicationArea', 'BODID')).toBe('m-1');
    const one = parseXml(
      buildGetProductionSchedule({ workOrderNumber: 'WO-9', sender: 'HUB', messageId: 'm', createdAt: new Date() }),
    );
    expect(
      childOf(childOf(one, B2MML_NS, 'DataArea'), B2MML_NS, 'ProductionSchedule')!.children.map((c) => c.name),
    ).toEqual(['ProductionRequest']);
  });

  it(`ProcessProductionPerformance carries the key, the order, \
the state and the produced quantity in XSD order`, () => {
    const xml = buildProcessProductionPerformance({
      id: 'key-1',
      workOrderNumber: 'WO-1',
      lineValue: 'L01',
      state: 'Completed',
      actualQuantity: 95,
      actualStart: new Date('2030-01-01T06:00:00Z'),
      actualEnd: new Date('2030-01-01T14:00:00Z'),
      publishedAt: new Date('2030-01-01T14:01:00Z'),
      sender: 'HUB',
    });
    const pp = childOf(childOf(parseXml(xml), B2MML_NS, 'DataArea'), B2MML_NS, 'ProductionPerformance')!;
    expect(pp.children.map((c) => c.name)).toEqual(['ID', 'HierarchyScope', 'PublishedDate', 'ProductionResponse']);
    const pr = childOf(pp, B2MML_NS, 'ProductionResponse')!;
    expect(pr.children.map((c) => c.name)).toEqual([
      'ID',
      'ProductionRequestID',
      'HierarchyScope',
      'StartTime',
      'EndTime',
      'SegmentResponse',
      'ResponseState',
    ]);
    expect(textAt(pp, B2MML_NS, 'ID')).toBe('key-1');
    expect(textAt(pr, B2MML_NS, 'ProductionRequestID')).toBe('WO-1');
    expect(textAt(pr, B2MML_NS, 'ResponseState')).toBe('Completed');
    expect(textAt(pr, B2MML_NS, 'SegmentResponse', 'MaterialActual', 'Quantity', 'QuantityString')).toBe('95');
    expect(textAt(pr, B2MML_NS, 'SegmentResponse', 'MaterialActual', 'MaterialUse')).toBe('Produced');
    // No actual times yet: the elements are left out, not sent empty.
    const open = buildProcessProductionPerformance({
      id: 'k',
      workOrderNumber: 'W',
      lineValue: 'L',
      state: 'Released',
      actualQuantity: 0,
      actualStart: null,
      actualEnd: null,
      publishedAt: new Date(),
      sender: 'HUB',
    });
    expect(open).not.toMatch(/StartTime|EndTime/);
  });

  it('reads an acknowledgement: accepted, or rejected with its reason', () => {
    const ack = (criteria: string) =>
      `<AcknowledgeProductionPerformance xmlns="${B2MML_NS}"><DataArea><Acknowledge>${criteria}</Acknowledge>` +
      `</DataArea></AcknowledgeProductionPerformance>`;
    expect(
      readAcknowledge(ack('<ResponseCriteria><ResponseExpression actionCode="Accepted"/></ResponseCriteria>')),
    ).toEqual({ accepted: true });
    expect(readAcknowledge(ack(''))).toEqual({ accepted: true });
    expect(
      readAcknowledge(
        ack(
          '<ResponseCriteria><ResponseExpression actionCode="Rejected"/><ChangeStatus>' +
            '<Description>locked</Description></ChangeStatus></ResponseCriteria>',
        ),
      ),
    ).toEqual({ accepted: false, reason: 'locked' });
    expect(() => readAcknowledge('<Other/>')).toThrow(/no B2MML V0600 AcknowledgeProductionPerformance/);
  });
});

describe('SOAP faults', () => {
  it('SOAP 1.1 and 1.2 faults: Client/Sender are final, Server/Receiver are retried', () => {
    const f11 = (code: string) =>
      `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>` +
      `${code}</faultcode><faultstring>bad &amp; sad</faultstring></soap:Fault></soap:Body></soap:Envelope>`;
    expect(describeSoapFault(f11('soap:Client'))).toEqual({
      message: 'SOAP Fault soap:Client: bad & sad',
      upstreamCode: 'soap:Client',
      retryable: false,
    });
    expect(describeSoapFault(f11('soap:Server.Database'))).toMatchObject({ retryable: true });
    const f12 =
      `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code>` +
      `<env:Value>env:Sender</env:Value></env:Code><env:Reason><env:Text xml:lang="en">no such line</env:Text>` +
      `</env:Reason></env:Fault></env:Body></env:Envelope>`;
    expect(describeSoapFault(f12)).toEqual({
      message: 'SOAP Fault env:Sender: no such line',
      upstreamCode: 'env:Sender',
      retryable: false,
    });
    expect(describeSoapFault('<html>502 Bad Gateway</html>')).toBeUndefined();
    expect(describeSoapFault('not xml')).toBeUndefined();
  });
});
