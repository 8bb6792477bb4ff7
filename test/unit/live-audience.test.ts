import { describe, expect, it } from 'vitest';
import { LiveAudience, listenerPayload, listenerTopic } from '../../lib/telemetry/live.ts';

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
