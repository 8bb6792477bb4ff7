import mqtt from 'mqtt';
import { MqttIngestClient, type InboundMessage } from './lib/telemetry/mqtt/ingest-client.ts';
import { startMosquitto } from './test/helpers/mosquitto.ts';
const b = await startMosquitto({});
const subs = [{ filter: '$share/g/s/#', qos: 1 as const }];
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
async function pub(from: number, n: number) {
  const p = await mqtt.connectAsync(b.url, { protocolVersion: 5 });
  const s = []; for (let i = from; i < from + n; i++) s.push(p.publishAsync('s/a', String(i), { qos: 1 }));
  await Promise.all(s); await p.endAsync();
}
const got: Record<string, number[]> = { A: [], B: [], A2: [] };
const mk = (name: string, id: string, ack: boolean) => {
  const c: MqttIngestClient = new MqttIngestClient({ url: b.url, clientId: id, subscriptions: subs }, (msgs) => { got[name]!.push(...msgs.map(m => Number(m.payload.toString()))); if (ack) c.ack(msgs); });
  return c;
};
const A = mk('A', 'a', false), B = mk('B', 'b', true);
for (const c of [A, B]) { const s = new Promise(r => c.once('subscribed', r)); await c.start(); await s; }
await pub(0, 100); await sleep(500);
console.log('phase1 A', got.A.length, 'B', got.B.length);
await A.stop();
await pub(100, 100); await sleep(1000);
console.log('phase2 (A offline) B got', got.B.filter(x => x >= 100).length, 'of 100 new; B got any of A unacked?', got.B.filter(x => got.A.includes(x)).length);
const A2 = mk('A2', 'a', true); await A2.start(); await sleep(1000);
console.log('A back: got', got.A2.length, 'redelivered of its unacked', got.A2.filter(x => got.A.includes(x)).length, 'new while offline', got.A2.filter(x => x >= 100).length);
const all = new Set([...got.B, ...got.A2]); console.log('union of acked', all.size);
await A2.stop(); await B.stop(); await b.stop();
