import { parse } from 'csv-parse';
import { Readable } from 'node:stream';
import { wireTimeMs } from '../connectors/historian/wire-time.ts';
import { type WallTime, SkippedTimeError, ZonedReader, isTimeZone } from '../time/zoned.ts';

/**
 * A sensor log as plants write them (the plan's sensor_log.csv: timestamp, machine_id, sensor_type, value, unit,
 * quality), read as a stream of rows, each a reading or the reason it is not one, with the file's own line
 * number. What makes the whole file unreadable (a missing required column, bytes that are not the encoding
 * given) is a FileRefusedError before any row is given. Zone-less times are read in the site's zone, DST
 * included (lib/time/zoned.ts). Resolving machine and sensor, validation and storage are the pipeline's.
 */

export interface SensorLogOptions {
  /** The site's IANA zone: zone-less timestamps are its wall-clock times. */
  timeZone: string;
  /** Column delimiter; 'auto' (default) takes the one of `,` `;` TAB that the header line has most of. */
  delimiter?: ',' | ';' | '\t' | 'auto';
  /** Decimal separator of values (default '.'); with ',' a value reads "12,5", and the delimiter is not ','. */
  decimal?: '.' | ',';
  /**
   * How timestamps are written: 'iso' (default: 2026-10-25T02:30:00Z, with an offset, or zone-less), 'dmy'
   * (25.10.2026 02:30[:00]), 'mdy' (10/25/2026 02:30[:00]), 'excel' (serial days since 1899-12-30, 1900 system).
   */
  dateFormat?: 'iso' | 'dmy' | 'mdy' | 'excel';
  /** The file's encoding (default utf-8, checked strictly); windows-1252 and latin1 as plants' Excel writes. */
  encoding?: 'utf-8' | 'windows-1252' | 'latin1' | 'utf-16le';
  /** Our column name → the file's header (default: the same names). */
  columns?: Partial<Record<SensorLogColumn, string>>;
}

export const REQUIRED = ['timestamp', 'machine_id', 'sensor_type', 'value'] as const;
export const OPTIONAL = ['unit', 'quality'] as const;
export type SensorLogColumn = (typeof REQUIRED)[number] | (typeof OPTIONAL)[number];

export interface SensorLogReading {
  ts: Date;
  machineId: string;
  sensorType: string;
  value: number;
  unit?: string;
  quality?: number;
}

/** A row that is not a reading: its column (when one is to blame), a code and a message for the report. */
export interface RowError {
  column?: string;
  code: 'COLUMN_COUNT' | 'MISSING_VALUE' | 'NOT_A_NUMBER' | 'BAD_TIMESTAMP' | 'SKIPPED_TIME' | 'BAD_QUALITY';
  message: string;
}

export type SensorLogRow = { line: number; reading: SensorLogReading } | { line: number; error: RowError };

/** The whole file refused, nothing read: `code` and, where one is to blame, the column. */
export class FileRefusedError extends Error {
  override name = 'FileRefusedError';
  constructor(
    readonly code: 'MISSING_COLUMN' | 'ENCODING' | 'EMPTY_FILE' | 'BAD_OPTIONS' | 'MALFORMED_CSV' | 'UPLOAD_FAILED',
    message: string,
    readonly column?: string,
  ) {
    super(message);
  }
}

/** Reads `input` (the file's bytes, in chunks) row by row. */
export async function* readSensorLog(
  input: AsyncIterable<Buffer | Uint8Array>,
  opts: SensorLogOptions,
): AsyncGenerator<SensorLogRow> {
  if (!isTimeZone(opts.timeZone)) throw new FileRefusedError('BAD_OPTIONS', `unknown time zone ${opts.timeZone}`);
  const decimal = opts.decimal ?? '.';
  const text = lf(decode(input, opts.encoding ?? 'utf-8'));
  // The delimiter is sniffed from the header line, so the first chunk is looked at before csv-parse starts.
  // The whole header line first (chunks may be small), at most 64 KiB of it.
  let head = '';
  while (!head.includes('\n') && head.length < 65_536) {
    const next = await text.next();
    if (next.done) break;
    head += next.value;
  }
  if (!head.trim()) throw new FileRefusedError('EMPTY_FILE', 'the file is empty');
  const delimiter = opts.delimiter && opts.delimiter !== 'auto' ? opts.delimiter : sniff(head, decimal);
  if (delimiter === ',' && decimal === ',')
    throw new FileRefusedError('BAD_OPTIONS', 'a decimal comma needs another delimiter (`;` or TAB)');
  const parser = parse({
    delimiter,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    trim: true,
    info: true,
    raw: true,
  });
  const source = Readable.from(
    (async function* () {
      yield head;
      yield* text;
    })(),
  );
  // pipe() does not pass a source's error on: an encoding error must end the parse with it, not leave it waiting.
  source.on('error', (e) => parser.destroy(e));
  source.pipe(parser);
  let index: Record<SensorLogColumn, number> | undefined;
  let width = 0;
  // One reader per series: a repeated hour is read in order per sensor, so rows of several sensors at one wall
  // time (or a file grouped by machine) are not taken for the clock going back.
  const readers = new Map<string, ZonedReader>();
  const zoned = (key: string) => {
    let z = readers.get(key);
    if (!z) {
      z = new ZonedReader(opts.timeZone);
      readers.set(key, z);
    }
    return z;
  };
  try {
    type Parsed = { record: string[]; raw: string; info: { lines: number } };
    for await (const { record, raw, info } of parser as AsyncIterable<Parsed>) {
      if (!index) {
        index = header(record, opts.columns ?? {});
        width = record.length;
        continue;
      }
      yield row(record, startLine(raw, info.lines), index, width, {
        decimal,
        dateFormat: opts.dateFormat ?? 'iso',
        zoned,
      });
    }
  } catch (e) {
    if (e instanceof FileRefusedError) throw e;
    const err = e as { code?: string; message?: string; status?: number };
    // The upload itself failed (cut at a size limit, the client gone): that, not a CSV problem.
    if (typeof err.status === 'number') throw new FileRefusedError('UPLOAD_FAILED', err.message ?? 'the upload failed');
    throw new FileRefusedError('MALFORMED_CSV', `the file is not CSV as read: ${err.message ?? err.code}`);
  }
}

/**
 * The line a record starts on, for the report: csv-parse gives the line it ends on, and its raw text (with the
 * blank lines skipped before it); a quoted field may hold line breaks.
 */
function startLine(raw: string, endLine: number): number {
  const own = raw.replace(/^([ \t]*\n)+/, '').replace(/\n$/, '');
  let breaks = 0;
  for (const ch of own) if (ch === '\n') breaks++;
  return endLine - breaks;
}

/**
 * CRLF and lone CR as LF, so that line numbers count as an editor does (csv-parse counts a quoted CRLF as two);
 * a CR at the end of a chunk waits for the next one.
 */
async function* lf(text: AsyncGenerator<string>): AsyncGenerator<string> {
  let pending = '';
  for await (const t of text) {
    const s = pending + t;
    pending = s.endsWith('\r') ? '\r' : '';
    const body = pending ? s.slice(0, -1) : s;
    if (body) yield body.replace(/\r\n?/g, '\n');
  }
  if (pending) yield '\n';
}

/** Where each column is; a required one missing refuses the file, naming it. */
function header(names: string[], mapping: Partial<Record<SensorLogColumn, string>>) {
  const at = new Map(names.map((n, i) => [n.trim().toLowerCase(), i]));
  const index = {} as Record<SensorLogColumn, number>;
  for (const c of [...REQUIRED, ...OPTIONAL]) {
    const name = (mapping[c] ?? c).toLowerCase();
    const i = at.get(name);
    if (i === undefined) {
      if ((REQUIRED as readonly string[]).includes(c))
        throw new FileRefusedError('MISSING_COLUMN', `the file has no column "${mapping[c] ?? c}"`, mapping[c] ?? c);
      index[c] = -1;
    } else index[c] = i;
  }
  return index;
}

interface RowContext {
  decimal: '.' | ',';
  dateFormat: NonNullable<SensorLogOptions['dateFormat']>;
  zoned: (series: string) => ZonedReader;
  series?: string;
}

function row(
  r: string[],
  line: number,
  index: Record<SensorLogColumn, number>,
  width: number,
  c: RowContext,
): SensorLogRow {
  const fail = (code: RowError['code'], message: string, column?: string): SensorLogRow => ({
    line,
    error: { code, message, ...(column ? { column } : {}) },
  });
  if (r.length !== width) return fail('COLUMN_COUNT', `${r.length} columns where the header has ${width}`);
  const get = (col: SensorLogColumn) => (index[col] >= 0 ? (r[index[col]] ?? '') : '');
  for (const col of REQUIRED) if (get(col) === '') return fail('MISSING_VALUE', `no ${col}`, col);
  const value = number(get('value'), c.decimal);
  if (value === undefined) return fail('NOT_A_NUMBER', `"${get('value')}" is not a number`, 'value');
  let ts: number | undefined;
  try {
    ts = timestamp(get('timestamp'), { ...c, series: `${get('machine_id')}\u0000${get('sensor_type')}` });
  } catch (e) {
    if (e instanceof SkippedTimeError) return fail('SKIPPED_TIME', e.message, 'timestamp');
    throw e;
  }
  if (ts === undefined)
    return fail('BAD_TIMESTAMP', `"${get('timestamp')}" is not a ${c.dateFormat} timestamp`, 'timestamp');
  const reading: SensorLogReading = {
    ts: new Date(ts),
    machineId: get('machine_id'),
    sensorType: get('sensor_type'),
    value,
  };
  if (get('unit')) reading.unit = get('unit');
  if (get('quality')) {
    const q = number(get('quality'), c.decimal);
    if (q === undefined || q < 0 || q > 100)
      return fail('BAD_QUALITY', `quality "${get('quality')}" is not 0 to 100`, 'quality');
    reading.quality = q;
  }
  return { line, reading };
}

const NUMBER = { '.': /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/, ',': /^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$/ };

/** A plain decimal number with the file's separator; no thousands separators, no "NaN", no "1e999". */
function number(s: string, decimal: '.' | ','): number | undefined {
  if (!NUMBER[decimal].test(s)) return undefined;
  const n = Number(decimal === ',' ? s.replace(',', '.') : s);
  return Number.isFinite(n) ? n : undefined;
}

const ZONELESS = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3})\d*)?)?$/;
const DMY = /^(\d\d?)\.(\d\d?)\.(\d{4})[ T](\d\d?):(\d\d)(?::(\d\d))?$/;
const MDY = /^(\d\d?)\/(\d\d?)\/(\d{4})[ T](\d\d?):(\d\d)(?::(\d\d))?$/;
/** 1899-12-30: day 0 of Excel's 1900 date system (its serial 60, the fictitious 1900-02-29, lies before 61). */
const EXCEL_EPOCH = Date.UTC(1899, 11, 30);

function timestamp(s: string, c: RowContext): number | undefined {
  const wallOf = (y: string, mo: string, d: string, h: string, mi: string, sec?: string, ms?: string) =>
    valid({
      year: +y,
      month: +mo,
      day: +d,
      hour: +h,
      minute: +mi,
      second: +(sec ?? 0),
      ms: +(ms ?? '0').padEnd(3, '0'),
    });
  if (c.dateFormat === 'iso') {
    // With Z or an offset it is an instant as written; without, the site's wall-clock time.
    if (/(Z|[+-]\d\d:\d\d)$/.test(s)) return wireTimeMs(s.replace(' ', 'T'));
    const m = ZONELESS.exec(s);
    const w = m && wallOf(m[1]!, m[2]!, m[3]!, m[4]!, m[5]!, m[6], m[7]);
    return w ? c.zoned(c.series ?? '').read(w) : undefined;
  }
  if (c.dateFormat === 'excel') {
    // A serial is a wall-clock date and time too (Excel keeps no zone): days and the fraction of a day.
    const days = number(s, c.decimal);
    if (days === undefined || days < 1) return undefined;
    const d = new Date(EXCEL_EPOCH + Math.round(days * 86_400_000));
    return c.zoned(c.series ?? '').read({
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
      ms: d.getUTCMilliseconds(),
    });
  }
  const m = (c.dateFormat === 'dmy' ? DMY : MDY).exec(s);
  if (!m) return undefined;
  const [day, month] = c.dateFormat === 'dmy' ? [m[1]!, m[2]!] : [m[2]!, m[1]!];
  const w = wallOf(m[3]!, month, day, m[4]!, m[5]!, m[6]);
  return w ? c.zoned(c.series ?? '').read(w) : undefined;
}

/** The fields as a real calendar time (no 31 April, no 24:00), or undefined. */
function valid(w: WallTime): WallTime | undefined {
  const d = new Date(Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second));
  const same =
    d.getUTCFullYear() === w.year &&
    d.getUTCMonth() === w.month - 1 &&
    d.getUTCDate() === w.day &&
    d.getUTCHours() === w.hour &&
    d.getUTCMinutes() === w.minute &&
    d.getUTCSeconds() === w.second;
  return same ? w : undefined;
}

/** The delimiter of the header line: the most frequent of `,` `;` TAB outside quotes (`;` with decimal commas). */
function sniff(text: string, decimal: '.' | ','): ',' | ';' | '\t' {
  const line = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const counts = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch in counts) counts[ch as keyof typeof counts]++;
  }
  const best = (Object.entries(counts) as [',' | ';' | '\t', number][]).sort((a, b) => b[1] - a[1])[0]!;
  if (best[1] === 0) return decimal === ',' ? ';' : ',';
  return best[0];
}

/** The bytes as text, chunk by chunk; bytes that are not the encoding refuse the file (never stored as mojibake). */
async function* decode(input: AsyncIterable<Buffer | Uint8Array>, encoding: string): AsyncGenerator<string> {
  const decoder = new TextDecoder(encoding, { fatal: true });
  let start = 0;
  let end = 0;
  try {
    for await (const chunk of input) {
      start = end;
      end += chunk.byteLength;
      const text = decoder.decode(chunk, { stream: true });
      if (text) yield text;
    }
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch (e) {
    if (e instanceof TypeError)
      throw new FileRefusedError(
        'ENCODING',
        `the file is not ${encoding}: bytes between ${start + 1} and ${end} do not decode (give its encoding, ` +
          'e.g. windows-1252)',
      );
    throw e;
  }
}
