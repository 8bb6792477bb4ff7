import type { IotConfig } from '../../config/iot.ts';
import type { TelemetrySource } from '../source.ts';
import { HttpPoller } from './http-polling.ts';
import { MqttJsonSource } from './mqtt-json.ts';
import { SparkplugHost } from './sparkplug.ts';

export interface SourceSettings {
  iot: IotConfig;
  /** The broker of iot.yml mqtt.url, else hub.yml's (MQTT_URL). */
  mqttUrl: string | undefined;
  /** How often the HTTP poller saves its endpoints' status (tests shorten it). */
  statusIntervalMs?: number;
}

/**
 * The live sources iot.yml asks for. Adding one is a file implementing TelemetrySource, its section of iot.yml
 * (lib/config/iot.ts), and a line here.
 */
export function configuredSources(s: SourceSettings): TelemetrySource[] {
  const { iot } = s;
  const m = iot.mqtt;
  const url = m?.url ?? s.mqttUrl;
  const maxFutureMs = iot.pipeline.maxFutureSeconds * 1000;
  const sources: TelemetrySource[] = [];
  if (m?.enabled && url && m.topics.length) {
    sources.push(new MqttJsonSource(m, { url, livePrefix: iot.live.topicPrefix, maxFutureMs }));
  }
  if (m?.enabled && url && m.sparkplug.enabled) sources.push(new SparkplugHost(m, { url }));
  if (iot.http.enabled && iot.http.endpoints.length) {
    sources.push(new HttpPoller(iot.http, { maxFutureMs, statusIntervalMs: s.statusIntervalMs }));
  }
  return sources;
}
