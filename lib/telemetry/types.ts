import type { SourceName } from './sources.ts';

/**
 * What every source adapter (MQTT JSON, Sparkplug B, HTTP polling, historian backfill, CSV/XLSX import) hands
 * the ONE telemetry pipeline. Adapters turn their input into these; they never write rows themselves.
 */
export interface IncomingReading {
  /**
   * The hub's sensor id (iot.sensors.id), as the adapter's mapping resolved it; for a historian tag, its series key
   * (`tagSeriesKey(tagMappingId)`, which no sensor id can be).
   */
  sensorId: string;
  ts: Date;
  /** The raw value: the series' scale and offset (a tag mapping's; 1 and 0 for a sensor) apply in the pipeline. */
  value: number;
  /**
   * A digital or enumeration value (a PI digital state, a system state such as "I/O Timeout"): stored with its name
   * and code in telemetry.states, never as a number among the readings. `value` is then the code.
   */
  state?: { name: string; code: number };
  /** The source's own quality on the hub's 0–100 scale, when the source says one. */
  sourceQuality?: number;
  /** The unit the source states, when it states one: it must equal the sensor's. */
  unit?: string;
  /**
   * Where it came from, so a reading the pipeline refuses (unknown sensor, REJECT rule) becomes a dead letter with its
   * topic and raw payload. Shared by all readings of one message.
   */
  origin?: { topic?: string; payload?: Buffer };
}

export type DeadLetterReason =
  | 'MALFORMED_PAYLOAD' // not JSON / not protobuf / not UTF-8 / too large
  | 'UNMAPPABLE_PAYLOAD' // parsed, but the mapping finds no sensor id, value or timestamp
  | 'UNKNOWN_SENSOR' // the sensor id is not registered
  | 'NO_MATCHING_TOPIC' // a topic no configured pattern matches
  | 'INVALID_VALUE' // NaN, Infinity, not a number
  | 'INVALID_TIMESTAMP' // unparseable, before 1970, too far in the future
  | 'UNKNOWN_UNIT'
  | 'REJECTED_BY_RULE' // a range rule with action REJECT
  | 'SPARKPLUG_PROTOCOL' // unknown alias, data before birth, ...
  | 'DUPLICATE_TIMESTAMP'; // a historian's second value at one timestamp: one value per series and ms is stored

/** A message or value the hub could not use: kept with its reason, never silently dropped. */
export interface DeadLetter {
  reason: DeadLetterReason;
  detail: string;
  topic?: string;
  /** The raw payload as received (bytes kept as-is; shown base64 or UTF-8 where valid). */
  payload?: Buffer;
  sensorId?: string;
  /** Identity of what is refused, for a source that may read it again (a historian page after a restart). */
  key?: string;
}

/**
 * One unit of work from a source: readings and dead letters decoded from one or more messages, and `ack`,
 * which the pipeline calls exactly once, only after every reading and dead letter of the batch is committed
 * (MQTT PUBACK, backfill checkpoint, import progress). `fail` is called instead when the commit failed:
 * the source must not acknowledge, so the data comes again.
 */
export interface SourceBatch {
  source: SourceName;
  readings: IncomingReading[];
  deadLetters: DeadLetter[];
  /** Given what became of the batch's readings (a backfill counts them; MQTT only acknowledges). */
  ack: (outcome: BatchOutcome) => void;
  fail?: (err: Error) => void;
}

/** What the pipeline did with one batch's readings and dead letters, once committed. */
export interface BatchOutcome {
  /** Readings and states newly stored. */
  stored: number;
  /** Already stored (a redelivery, a page read again after a restart) or repeating the last value: not stored again. */
  duplicate: number;
  /** Refused by a REJECT rule, or unusable (unknown or inactive series, a bad value): kept as dead letters. */
  rejected: number;
  /** The batch's own dead letters (what the source could not decode), kept too. */
  deadLetters: number;
  /**
   * Of `rejected`, those whose series the hub did not know (UNKNOWN_SENSOR): a source that can read them again
   * (a historian) does not count them as done.
   */
  unresolved: number;
}

/** A loss a source could detect but not prevent (a Sparkplug seq gap), for the data-quality report. */
export interface LossReport {
  source: SourceName;
  kind: string;
  detail: string;
  expected?: number;
  got?: number;
  stream?: string;
}

/**
 * The pipeline as sources see it. `submit` resolves when the batch is accepted (backpressure). The other two are
 * events some sources can report (the pipeline has them; a test's sink may leave them out).
 */
export interface TelemetrySink {
  submit(batch: SourceBatch): Promise<void>;
  recordLoss?(loss: LossReport): void;
  /** The sensors whose ids start with `prefix` went silent with their node or device: one STALE alert each. */
  markStale?(source: SourceName, prefix: string, reason: string, at: Date): void;
}

/** One reading as the pipeline's last stage hands it to storage. */
export interface StoredReading {
  seriesId: number;
  ts: Date;
  value: number;
  quality: number;
  source: number;
  workOrderId?: string | null;
  shiftId?: string | null;
  recipeId?: string | null;
  operatorId?: string | null;
}
