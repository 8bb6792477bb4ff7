/**
 * Builders for Sparkplug B payloads the way an edge node sends them: births with names, aliases and datatypes,
 * data with aliases only and no datatype. Used for the rebirth command and by tests and benchmarks.
 */
import { encodePayload, type MetricInput, type MetricValue, type U64 } from './codec.ts';
import { DataType } from './proto.ts';

export const REBIRTH_METRIC = 'Node Control/Rebirth';
export const BDSEQ_METRIC = 'bdSeq';

export interface BirthMetric {
  name: string;
  alias?: U64;
  datatype: number;
  value: MetricValue;
  timestamp?: number | Date;
}

export interface BirthOptions {
  /** NBIRTH must carry 0; a DBIRTH carries the node's next seq. */
  seq?: number;
  /** Given → an NBIRTH: `bdSeq` and `Node Control/Rebirth` = false are added in front, as the spec requires. */
  bdSeq?: number;
  timestamp?: number | Date;
  metrics: BirthMetric[];
}

export function buildBirth(opts: BirthOptions): Buffer {
  const metrics: MetricInput[] = [];
  if (opts.bdSeq !== undefined) {
    metrics.push({ name: BDSEQ_METRIC, datatype: DataType.UInt64, value: opts.bdSeq });
    metrics.push({ name: REBIRTH_METRIC, datatype: DataType.Boolean, value: false });
  }
  for (const m of opts.metrics) metrics.push({ ...m });
  return encodePayload({ timestamp: opts.timestamp ?? Date.now(), seq: opts.seq ?? 0, metrics });
}

export interface DataMetric {
  /** Alias only is the normal case after a birth; name is for edge nodes that do not alias. */
  alias?: U64;
  name?: string;
  /** Chooses the wire field; not written unless `writeDatatype`, like a real DATA message. */
  datatype: number;
  writeDatatype?: boolean;
  value: MetricValue;
  timestamp?: number | Date;
  isHistorical?: boolean;
}

export interface DataOptions {
  seq: number;
  timestamp?: number | Date;
  metrics: DataMetric[];
}

export function buildData(opts: DataOptions): Buffer {
  const metrics: MetricInput[] = opts.metrics.map((m) => ({
    name: m.name,
    alias: m.alias,
    datatype: m.datatype,
    omitDatatype: !m.writeDatatype,
    value: m.value,
    timestamp: m.timestamp,
    isHistorical: m.isHistorical,
  }));
  return encodePayload({ timestamp: opts.timestamp ?? Date.now(), seq: opts.seq, metrics });
}

/** NDEATH (the MQTT Will: bdSeq only, no seq) when `bdSeq` is given; DDEATH (seq, no metrics) when `seq` is. */
export function buildDeath(
  opts: { bdSeq: number; timestamp?: number | Date } | { seq: number; timestamp?: number | Date },
): Buffer {
  const timestamp = opts.timestamp ?? Date.now();
  if ('bdSeq' in opts) {
    const bdSeq: MetricInput = { name: BDSEQ_METRIC, datatype: DataType.UInt64, value: opts.bdSeq };
    return encodePayload({ timestamp, metrics: [bdSeq] });
  }
  return encodePayload({ timestamp, seq: opts.seq, metrics: [] });
}

/** NCMD payload asking an edge node to resend NBIRTH and all DBIRTHs. */
export function buildRebirthCommand(timestamp: number | Date): Buffer {
  return encodePayload({ timestamp, metrics: [{ name: REBIRTH_METRIC, datatype: DataType.Boolean, value: true }] });
}
