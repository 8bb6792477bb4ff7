import { describe, expect, it } from 'vitest';
import {
  FileRefusedError,
  readSensorLog,
  type SensorLogOptions,
  type SensorLogRow,
} from '../../lib/files/sensor-log-csv.ts';

// Hostile sensor logs as issue 12 lists them, each file written here by hand; the expected rows are worked out
// from the file and the zone's rules (Berlin: CET +01:00, CEST +02:00; changes on 2026-03-29 and 2026-10-25 at
// 01:00 UTC), not from what the reader answers.
const BERLIN: SensorLogOptions = { timeZone: 'Europe/Berlin' };
const HEADER = 'timestamp,machine_id,sensor_type,value,unit,quality';

/** The file's bytes in chunks of `size` (a chunk may end inside a character or a quoted field). */
async function* chunks(bytes: Buffer, size = 7) {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
async function read(file: string | Buffer, opts: SensorLogOptions = BERLIN, size = 7) {
  const out: SensorLogRow[] = [];
  for await (const r of readSensorLog(chunks(Buffer.isBuffer(file) ? file : Buffer.from(file), size), opts))
    out.push(r);
  return out;
}
const readings = (rows: SensorLogRow[]) =>
  rows.map((r) => ('reading' in r ? [r.line, r.reading.ts.toISOString(), r.reading.value] : [r.line, r.error.code]));
const refusal = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FileRefusedError);
  return e as FileRefusedError;
};

describe('reading a sensor log', () => {
  it('reads the template: instants with Z as written, unit and quality kept', async () => {
    const rows = await read(
      `${HEADER}\n2025-10-05T12:00:00Z,MACHINE-001,temperature,75.5,degC,100\n` +
        '2025-10-05T12:00:01Z,MACHINE-001,pressure,45.2,psi,90\n',
    );
    expect(rows).toEqual([
      {
        line: 2,
        reading: {
          ts: new Date('2025-10-05T12:00:00Z'),
          machineId: 'MACHINE-001',
          sensorType: 'temperature',
          value: 75.5,
          unit: 'degC',
          quality: 100,
        },
      },
      {
        line: 3,
        reading: {
          ts: new Date('2025-10-05T12:00:01Z'),
          machineId: 'MACHINE-001',
          sensorType: 'pressure',
          value: 45.2,
          unit: 'psi',
          quality: 90,
        },
      },
    ]);
  });

  it('takes a BOM, CRLF, `;` with decimal commas, quoted fields with delimiters, quotes and newlines', async () => {
    const file =
      '\uFEFFtimestamp;machine_id;sensor_type;value;unit\r\n' +
      '2026-01-15 08:00:00;M-101;temp;"12,5";degC\r\n' +
      '2026-01-15 08:00:01;"M-;101";"te""mp\r\nx";-0,25;degC\r\n';
    // Chunks of 5 bytes: the delimiter is sniffed from the whole header line, not its first chunk.
    const rows = await read(file, { ...BERLIN, decimal: ',' }, 5);
    expect(readings(await read(file.replaceAll(',', '.'), BERLIN, 5))).toEqual([
      [2, '2026-01-15T07:00:00.000Z', 12.5],
      [3, '2026-01-15T07:00:01.000Z', -0.25],
    ]);
    expect(rows).toEqual([
      {
        line: 2,
        reading: {
          ts: new Date('2026-01-15T07:00:00Z'),
          machineId: 'M-101',
          sensorType: 'temp',
          value: 12.5,
          unit: 'degC',
        },
      },
      {
        line: 3,
        reading: {
          ts: new Date('2026-01-15T07:00:01Z'),
          machineId: 'M-;101',
          // Line breaks are read as LF, also inside quotes.
          sensorType: 'te"mp\nx',
          value: -0.25,
          unit: 'degC',
        },
      },
    ]);
  });

  it('reads zone-less local times across the autumn change in order, and names a skipped spring time', async () => {
    const autumn = [
      HEADER,
      '2026-10-25 01:45,M,t,1,,',
      '2026-10-25 02:15,M,t,2,,',
      '2026-10-25 02:45,M,t,3,,',
      '2026-10-25 02:15,M,t,4,,',
      '2026-10-25 03:00,M,t,5,,',
    ].join('\n');
    expect(readings(await read(autumn))).toEqual([
      [2, '2026-10-24T23:45:00.000Z', 1],
      [3, '2026-10-25T00:15:00.000Z', 2],
      [4, '2026-10-25T00:45:00.000Z', 3],
      [5, '2026-10-25T01:15:00.000Z', 4],
      [6, '2026-10-25T02:00:00.000Z', 5],
    ]);
    // Several sensors at one wall time, and a file grouped by machine: each series reads its own repeated hour.
    const two = [
      HEADER,
      '2026-10-25 02:30,M-1,t,1,,',
      '2026-10-25 02:30,M-2,t,2,,',
      '2026-10-25 02:45,M-1,t,3,,',
      '2026-10-25 02:45,M-2,t,4,,',
      '2026-10-25 02:30,M-1,t,5,,',
      '2026-10-25 02:30,M-2,t,6,,',
    ].join('\n');
    expect(readings(await read(two)).map((r) => r[1])).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T00:45:00.000Z',
      '2026-10-25T00:45:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
    ]);
    const spring = `${HEADER}\n2026-03-29 01:59,M,t,1,,\n2026-03-29 02:30,M,t,2,,\n2026-03-29 03:00,M,t,3,,\n`;
    const rows = await read(spring);
    expect(readings(rows)).toEqual([
      [2, '2026-03-29T00:59:00.000Z', 1],
      [3, 'SKIPPED_TIME'],
      [4, '2026-03-29T01:00:00.000Z', 3],
    ]);
    expect(rows[1]).toMatchObject({ error: { column: 'timestamp', message: expect.stringMatching(/does not exist/) } });
  });

  it('reads day-first dates and Excel serials (1900 system) as wall-clock times of the site', async () => {
    const dmy = `${HEADER}\n25.10.2026 03:00,M,t,1,,\n1.7.2026 8:00:30,M,t,2,,\n31.04.2026 08:00,M,t,3,,\n`;
    expect(readings(await read(dmy, { ...BERLIN, dateFormat: 'dmy' }))).toEqual([
      [2, '2026-10-25T02:00:00.000Z', 1],
      [3, '2026-07-01T06:00:30.000Z', 2],
      [4, 'BAD_TIMESTAMP'],
    ]);
    // 46023 is 2026-01-01 in Excel's 1900 system; .5 is noon.
    const excel = `${HEADER}\n46023.5,M,t,1,,\n46023,M,t,2,,\n`;
    expect(readings(await read(excel, { ...BERLIN, dateFormat: 'excel' }))).toEqual([
      [2, '2026-01-01T11:00:00.000Z', 1],
      [3, '2025-12-31T23:00:00.000Z', 2],
    ]);
  });

  it('gives each bad row its line, column and code, skips blank lines, and goes on', async () => {
    const file = [
      HEADER,
      '2026-01-15T08:00:00Z,M,t,abc,,',
      '',
      '2026-01-15T08:00:01Z,M,t,1e999,,',
      '2026-01-15T08:00:02Z,M,t,1,,',
      '2026-01-15T08:00:03Z,M,t',
      '2026-01-15T08:00:04Z,M,t,1,,,extra',
      '2026-01-15T08:00:05Z,,t,1,,',
      'yesterday,M,t,1,,',
      '2026-01-15T08:00:06Z,M,t,1,,101',
      '   ',
      '2026-01-15T08:00:07Z,M,t,7,,',
    ].join('\n');
    const rows = await read(file, BERLIN, 11);
    expect(readings(rows)).toEqual([
      [2, 'NOT_A_NUMBER'],
      [4, 'NOT_A_NUMBER'],
      [5, '2026-01-15T08:00:02.000Z', 1],
      [6, 'COLUMN_COUNT'],
      [7, 'COLUMN_COUNT'],
      [8, 'MISSING_VALUE'],
      [9, 'BAD_TIMESTAMP'],
      [10, 'BAD_QUALITY'],
      [12, '2026-01-15T08:00:07.000Z', 7],
    ]);
    expect(rows[0]).toMatchObject({ error: { column: 'value', message: '"abc" is not a number' } });
    expect(rows[5]).toMatchObject({ error: { column: 'machine_id' } });
  });

  it('refuses the whole file for a missing required column, naming it, before any row', async () => {
    const e = await refusal(read('timestamp,machine_id,value\n2026-01-15T08:00:00Z,M,1\n'));
    expect([e.code, e.column]).toEqual(['MISSING_COLUMN', 'sensor_type']);
    // A column mapping names the file's own headers.
    const rows = await read('Zeit;Maschine;Art;Wert\n2026-01-15 08:00;M;t;1\n', {
      ...BERLIN,
      columns: { timestamp: 'Zeit', machine_id: 'Maschine', sensor_type: 'Art', value: 'Wert' },
    });
    expect(readings(rows)).toEqual([[2, '2026-01-15T07:00:00.000Z', 1]]);
  });

  it('refuses bytes that are not UTF-8, and reads them as the encoding given', async () => {
    const latin = Buffer.concat([
      Buffer.from(`${HEADER}\n2026-01-15T08:00:00Z,M,`),
      Buffer.from([0x44, 0xfc, 0x73, 0x65]), // "Düse" in windows-1252
      Buffer.from(',1,,\n'),
    ]);
    const e = await refusal(read(latin));
    expect(e.code).toBe('ENCODING');
    const rows = await read(latin, { ...BERLIN, encoding: 'windows-1252' });
    expect(rows[0]).toMatchObject({ reading: { sensorType: 'Düse' } });
  });

  it('refuses an empty file, an unknown zone and a decimal comma with a comma delimiter', async () => {
    expect((await refusal(read(''))).code).toBe('EMPTY_FILE');
    expect((await refusal(read(HEADER, { timeZone: 'Mars/Olympus' }))).code).toBe('BAD_OPTIONS');
    expect((await refusal(read(`${HEADER}\n`, { ...BERLIN, delimiter: ',', decimal: ',' }))).code).toBe('BAD_OPTIONS');
  });
});
