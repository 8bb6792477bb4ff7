import mqtt from 'mqtt';
import { MqttIngestClient, type InboundMessage } from './lib/telemetry/mqtt/ingest-client.ts';
import { startMosquitto } from './test/helpers/mosquitto.ts';
const b = await startMosquitto({});
const subs = [{ filter: 't/#', qos: 1 as const }];
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
const mode = process.argv[2];
async function pub(n: number) {
  const p = await mqtt.connectAsync(b.url, { protocolVersion: 5 });
  const s = []; for (let i = 0; i < n; i++) s.push(p.publishAsync('t/a', 'm' + i, { qos: 1 }));
  await Promise.all(s); await p.endAsync();
}
let max = 0;
let c: MqttIngestClient;
c = new MqttIngestClient({ url: b.url, clientId: 'q', subscriptions: subs, receiveMaximum: 100 }, (msgs) => {
  max = Math.max(max, c.stats.inFlight);
  if (mode === 'each') for (const m of msgs) setTimeout(() => c.ack([m]), 2);
  else setTimeout(() => c.ack(msgs), 2);
});
let sub = new Promise(r => c.once('subscribed', r)); await c.start(); await sub;
if (process.argv[3] === 'queued') { await c.stop(); await pub(20000); c = new MqttIngestClient((c as any).opts, (c as any).onMessages); await c.start(); }
else await pub(20000);
while (c.stats.acked < 20000) await sleep(10);
console.log(mode, process.argv[3], 'max inFlight', max);
await c.stop();
await b.stop();
