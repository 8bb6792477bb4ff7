import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Db } from '../../../lib/db/index.ts';
import { badInput, HubError } from '../../../lib/errors.ts';
import {
  FileRefusedError,
  readSensorLog,
  type SensorLogColumn,
  type SensorLogOptions,
} from '../../../lib/files/sensor-log-csv.ts';
import type * as G from '../__generated__/types.ts';
import { sensorsOfMachines, siteTimeZones } from '../iot.repo.ts';

const PREVIEW_ROWS = 20;
const REJECTED_ROWS = 100;

export interface UploadedFile {
  filename: string;
  createReadStream(): Readable;
}

/**
 * A dry run of an import: the file read to its end (streamed, hashed as it goes), each row resolved to its
 * sensor, nothing written. Unknown machines or sensors are rows' errors like a bad value; a file that cannot be
 * read at all (a missing column, the wrong encoding) is BAD_USER_INPUT with the reason.
 */
export async function previewImport(
  db: Db,
  file: UploadedFile,
  kind: G.ImportKind,
  o: G.ImportOptions,
): Promise<G.ImportPreview> {
  if (kind !== 'SENSOR_LOG') throw badInput(`unknown import kind ${kind}`);
  if (!o.dryRun)
    throw badInput('importFile stores nothing yet: send dryRun: true (imports that store come with the import job)', {
      reason: 'NOT_SUPPORTED',
    });
  const opts = await readerOptions(db, o);
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = file.createReadStream();
  async function* counted() {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }
  const out: G.ImportPreview = {
    fileName: file.filename,
    sha256: '',
    bytes: 0,
    rowsRead: 0,
    rowsValid: 0,
    rowsRejected: 0,
    preview: [],
    rejected: [],
  };
  const sensors = new SensorIndex(db);
  const reject = (r: G.ImportRejectedRow) => {
    out.rowsRejected++;
    if (out.rejected.length < REJECTED_ROWS) out.rejected.push(r);
  };
  try {
    for await (const row of readSensorLog(counted(), opts)) {
      out.rowsRead++;
      if ('error' in row) {
        reject({ line: row.line, column: row.error.column ?? null, code: row.error.code, message: row.error.message });
        continue;
      }
      const r = row.reading;
      const sensor = await sensors.find(r.machineId, r.sensorType);
      if (typeof sensor === 'string') {
        reject({ line: row.line, column: 'sensor_type', code: 'UNKNOWN_SENSOR', message: sensor });
        continue;
      }
      out.rowsValid++;
      if (out.preview.length < PREVIEW_ROWS)
        out.preview.push({
          line: row.line,
          ts: r.ts,
          machineId: r.machineId,
          sensorId: sensor.id,
          value: r.value,
          quality: r.quality ?? null,
        });
    }
  } catch (e) {
    if (e instanceof FileRefusedError)
      throw new HubError('BAD_USER_INPUT', e.message, { reason: e.code, ...(e.column ? { column: e.column } : {}) });
    throw e;
  } finally {
    stream.destroy();
  }
  return { ...out, sha256: hash.digest('hex'), bytes };
}

/** The reader's options from the mutation's, the site's zone by default. */
async function readerOptions(db: Db, o: G.ImportOptions): Promise<SensorLogOptions> {
  let timeZone = o.timeZone ?? undefined;
  if (!timeZone) {
    const zones = await siteTimeZones(db);
    if (zones.length !== 1) throw badInput("the plant has several sites: name the file's timeZone", { zones });
    timeZone = zones[0]!;
  }
  const pick = <T extends string>(name: string, v: string | null | undefined, allowed: readonly T[]) => {
    if (v === null || v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) throw badInput(`${name} is one of ${allowed.join(', ')}`);
    return v as T;
  };
  const columns = o.columns ?? undefined;
  if (columns && Object.values(columns).some((v) => typeof v !== 'string'))
    throw badInput("columns maps our column names to the file's header names (strings)");
  return {
    timeZone,
    delimiter: pick('delimiter', o.delimiter, [',', ';', '\t'] as const),
    decimal: pick('decimalSeparator', o.decimalSeparator, ['.', ','] as const),
    dateFormat: pick('dateFormat', o.dateFormat, ['iso', 'dmy', 'mdy', 'excel'] as const),
    encoding: pick('encoding', o.encoding, ['utf-8', 'windows-1252', 'latin1', 'utf-16le'] as const),
    columns: columns as Partial<Record<SensorLogColumn, string>> | undefined,
  };
}

/** Sensors by machine and type, loaded a machine at a time as the file names them. */
class SensorIndex {
  private readonly byMachine = new Map<string, Map<string, { id: string; isActive: boolean }[]>>();
  constructor(private readonly db: Db) {}

  async find(machineId: string, type: string): Promise<{ id: string } | string> {
    let types = this.byMachine.get(machineId);
    if (!types) {
      types = new Map();
      for (const s of await sensorsOfMachines(this.db, [machineId])) {
        const list = types.get(s.type) ?? [];
        list.push(s);
        types.set(s.type, list);
      }
      this.byMachine.set(machineId, types);
    }
    if (!types.size) return `no machine ${machineId} with sensors`;
    const found = (types.get(type) ?? []).filter((s) => s.isActive);
    if (!found.length) return `machine ${machineId} has no active ${type} sensor`;
    if (found.length > 1) return `machine ${machineId} has ${found.length} ${type} sensors: name one`;
    return found[0]!;
  }
}
