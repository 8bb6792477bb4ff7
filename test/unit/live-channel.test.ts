import { describe, expect, it } from 'vitest';
import {
  LiveAudience,
  LiveReadingEncoder,
  listenerPayload,
  listenerTopic,
  type LiveReading,
} from '../../lib/telemetry/live.ts';

describe('LiveAudience (who reads the live channel)', () => {
  const topic = (id: string) => listenerTopic('oee-hub/live', id);

  it('counts each listener once however often it announces, per kind, until it clears its announcement', () => {
    const a = new LiveAudience('oee-hub/live');
    expect([a.wants('readings'), a.wants('alerts')]).toEqual([false, false]);
    expect(a.update(topic('gw-1'), listenerPayload(['readings']))).toBe(true);
    a.update(topic('gw-1'), listenerPayload(['readings', 'alerts']));
    a.update(topic('gw-2'), Buffer.from('alerts'));
    expect([a.wants('readings'), a.wants('alerts')]).toEqual([true, true]);
    a.update(topic('gw-1'), Buffer.alloc(0)); // gw-1 stopped (or its will fired)
    expect([a.wants('readings'), a.wants('alerts')]).toEqual([false, true]);
    a.update(topic('gw-2'), Buffer.from('  alerts , future-kind '));
    a.update(topic('gw-2'), Buffer.from('future-kind'));
    expect([a.wants('readings'), a.wants('alerts')]).toEqual([false, false]);
  });

  it('takes only announcements: live data and bare prefixes are not', () => {
    const a = new LiveAudience('oee-hub/live');
    expect(a.update('oee-hub/live/readings/LINE-1', Buffer.from('readings'))).toBe(false);
    expect(a.update(topic(''), Buffer.from('readings'))).toBe(false);
    expect(a.wants('readings')).toBe(false);
    expect(a.filter).toBe('oee-hub/live/listeners/+');
  });
});

describe('LiveReadingEncoder', () => {
  it('writes exactly what JSON.stringify writes, for awkward values and after a sensor moves', () => {
    const enc = new LiveReadingEncoder();
    const readings: LiveReading[] = [
      {
        sensorId: 'S-"1"',
        sensorType: 'temperature',
        machineId: 'M-1',
        ts: '2026-11-22T10:00:00.000Z',
        value: 12.5,
        quality: 100,
        source: 'MQTT',
        workOrderId: null,
        operatorId: null,
      },
      {
        sensorId: 'S-"1"',
        sensorType: 'temperature',
        machineId: 'M-1',
        ts: '1999-12-31T23:59:59.999Z',
        value: -1e-300,
        quality: 0,
        source: 'HTTP',
        workOrderId: '0b8f3c1e-8d5a-4c1e-9f00-1234567890ab',
        operatorId: 'Zoë \\ "運転" \n',
      },
      {
        sensorId: 'S-"1"',
        sensorType: 'temperature',
        machineId: 'M-2',
        ts: '2026-11-22T10:00:01.000Z',
        value: 1e21,
        quality: 50,
        source: 'SPARKPLUG',
        workOrderId: null,
        operatorId: '',
      },
      {
        sensorId: 'S-2',
        sensorType: 'vibration',
        machineId: 'M-2',
        ts: '2026-11-22T10:00:01.000Z',
        value: -0,
        quality: 100,
        source: 'MQTT',
        workOrderId: null,
        operatorId: 'op-7',
      },
    ];
    for (const r of readings) expect(enc.encode(r)).toBe(JSON.stringify(r));
  });
});
