/** Sparkplug B for the telemetry pipeline: codec, host-side edge state machine, payload builders. */
export { DataType, type DataTypeCode } from './proto.ts';
export {
  decodePayload,
  encodePayload,
  interpretValue,
  shortestFloat32,
  type DecodedMetric,
  type DecodedPayload,
  type MetricInput,
  type MetricValue,
  type PayloadInput,
  type RawValue,
  type U64,
} from './codec.ts';
export { parseTopic, ncmdTopic, type ParsedTopic } from './topic.ts';
export {
  SparkplugState,
  type SparkplugResult,
  type SparkplugStateOptions,
  type SparkplugValue,
} from './edge-state.ts';
export {
  BDSEQ_METRIC,
  REBIRTH_METRIC,
  buildBirth,
  buildData,
  buildDeath,
  buildRebirthCommand,
  type BirthMetric,
  type BirthOptions,
  type DataMetric,
  type DataOptions,
} from './build.ts';
