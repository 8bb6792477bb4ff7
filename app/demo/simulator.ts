import mqtt from 'mqtt';
import { IotConfigSchema, type IotConfig } from '../../lib/config/iot.ts';

/** The iot.yml a fresh `npm start` uses: the demo sensors publish `{"value":..,"ts":..}` to plant/<line>/<sensor>. */
export const DEMO_IOT: IotConfig = IotConfigSchema.parse({
  mqtt: {
    clientId: 'oee-hub-demo-ingest',
    topics: [
      {
        pattern: 'plant/+/+',
        mapping: {
          sensorId: { topicSegment: 2 },
          values: [{ path: 'value' }],
          timestamp: { path: 'ts', format: 'iso' },
        },
      },
    ],
  },
});

/** Publishes one reading per demo sensor per second (QoS 1), like the plant's gateways would. */
export async function startDemoSimulator(
  url: string,
  sensors: { id: string; lineId: string; base: number; amp: number }[],
) {
  const client = await mqtt.connectAsync(url, { clientId: `oee-hub-demo-sim-${process.pid}`, connectTimeout: 10_000 });
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    const ts = new Date().toISOString();
    for (const [i, s] of sensors.entries()) {
      const value = Math.round((s.base + s.amp * Math.sin(tick / 30 + i)) * 100) / 100;
      void client.publishAsync(`plant/${s.lineId}/${s.id}`, JSON.stringify({ value, ts }), { qos: 1 }).catch(() => {});
    }
  }, 1000);
  return {
    stop: async () => {
      clearInterval(timer);
      await client.endAsync();
    },
  };
}
