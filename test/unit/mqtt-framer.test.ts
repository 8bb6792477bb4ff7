import { describe, expect, it } from 'vitest';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { PacketFramer, type FramedPublish } from '../../lib/mqtt/framer.ts';

/**
 * The framer against mqtt-packet's own encoder: whatever the chunk boundaries (every split point, and one byte
 * at a time), each packet comes out once, in order, PUBLISH decoded by the framer and everything else whole.
 */
const gen = (p: Packet, protocolVersion: 4 | 5) => mqttPacket.generate(p, { protocolVersion });

function stream(v: 4 | 5): { bytes: Buffer; expected: string[] } {
  const big = Buffer.alloc(300, 7); // a Remaining Length of two bytes
  const packets: [Packet, string][] = [
    [{ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: true }, 'other:2'],
    [
      {
        cmd: 'publish',
        topic: 'plant/L1/S1',
        payload: Buffer.from('{"v":1}'),
        qos: 1,
        messageId: 7,
        dup: false,
        retain: false,
      },
      'publish:plant/L1/S1:1:7:false:{"v":1}',
    ],
    [
      { cmd: 'publish', topic: 'plant/L1/é', payload: Buffer.from('x'), qos: 0, dup: false, retain: false },
      'publish:plant/L1/é:0:undefined:false:x',
    ],
    [
      { cmd: 'publish', topic: 'a', payload: big, qos: 1, messageId: 65535, dup: true, retain: false },
      `publish:a:1:65535:true:${big.toString()}`,
    ],
    [{ cmd: 'pingresp' }, 'other:13'],
    [{ cmd: 'suback', messageId: 3, granted: [1] }, 'other:9'],
    [
      { cmd: 'publish', topic: 'b', payload: Buffer.alloc(0), qos: 1, messageId: 1, dup: false, retain: false },
      'publish:b:1:1:false:',
    ],
  ];
  if (v === 5) {
    // A PUBLISH with a property is left to mqtt-packet.
    packets.push([
      {
        cmd: 'publish',
        topic: 'c',
        payload: Buffer.from('p'),
        qos: 1,
        messageId: 2,
        dup: false,
        retain: false,
        properties: { contentType: 'json' },
      },
      'other:3',
    ]);
  }
  return { bytes: Buffer.concat(packets.map(([p]) => gen(p, v))), expected: packets.map(([, e]) => e) };
}

function run(v: 4 | 5, chunks: Buffer[]): string[] {
  const out: string[] = [];
  const framer = new PacketFramer(
    v === 5,
    (p: FramedPublish) => out.push(`publish:${p.topic}:${p.qos}:${p.messageId}:${p.dup}:${p.payload.toString()}`),
    (packet) => out.push(`other:${packet[0]! >> 4}`),
  );
  for (const c of chunks) framer.push(c);
  return out;
}

describe('PacketFramer', () => {
  for (const v of [4, 5] as const) {
    it(`yields every packet once, in order, at every chunk boundary (MQTT ${v === 5 ? '5' : '3.1.1'})`, () => {
      const { bytes, expected } = stream(v);
      expect(run(v, [bytes])).toEqual(expected);
      for (let cut = 1; cut < bytes.length; cut++)
        expect(run(v, [bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(expected);
      expect(
        run(
          v,
          [...bytes].map((b) => Buffer.from([b])),
        ),
      ).toEqual(expected);
    });
  }

  it('throws on a Remaining Length longer than four bytes', () => {
    const framer = new PacketFramer(
      true,
      () => {},
      () => {},
    );
    expect(() => framer.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/Remaining Length/);
  });
});
