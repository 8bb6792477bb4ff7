import type { StoredReading } from './types.ts';

/** The columns encodeReadings writes, in its order (the COPY's column list). */
export const COPY_COLUMNS = 'series_id, ts, value, quality, source, work_order_id, shift_id, recipe_id, operator_id';
const FIELDS = 9;
/** Postgres' binary timestamps count microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Bytes of a row without its text and uuid values: field count, 9 lengths, int4, int8, float8, 2 × int2. */
const FIXED_ROW = 2 + FIELDS * 4 + 4 + 8 + 8 + 2 + 2;

/**
 * The COPY BINARY stream of a batch (header, rows, trailer), in one buffer. Exported for its test: every value
 * kind (NULLs, uuids, text with quotes and non-ASCII, timestamps before 2000) round-trips through Postgres.
 */
export function encodeReadings(rows: readonly StoredReading[]): Buffer {
  const uuids = new Map<string, Buffer>(); // a batch repeats the same few work orders, shifts and recipes
  const uuid = (s: string) => {
    let b = uuids.get(s);
    if (!b) {
      b = uuidBytes(s);
      uuids.set(s, b);
    }
    return b;
  };
  let size = SIGNATURE.length + 8 + 2;
  for (const r of rows) {
    size += FIXED_ROW;
    if (r.workOrderId != null) size += 16;
    if (r.shiftId != null) size += 16;
    if (r.recipeId != null) size += 16;
    if (r.operatorId != null) size += Buffer.byteLength(r.operatorId);
  }
  const buf = Buffer.allocUnsafe(size);
  let o = SIGNATURE.copy(buf, 0);
  o = buf.writeInt32BE(0, o); // flags
  o = buf.writeInt32BE(0, o); // header extension length
  const optionalUuid = (s: string | null | undefined) => {
    if (s == null) {
      o = buf.writeInt32BE(-1, o);
      return;
    }
    o = buf.writeInt32BE(16, o);
    o += uuid(s).copy(buf, o);
  };
  for (const r of rows) {
    o = buf.writeInt16BE(FIELDS, o);
    o = buf.writeInt32BE(4, o);
    o = buf.writeInt32BE(r.seriesId, o);
    // int8 microseconds as two int32 halves: ms × 1000 stays exact in a double for any plausible date.
    const us = (r.ts.getTime() - PG_EPOCH_MS) * 1000;
    const hi = Math.floor(us / 2 ** 32);
    o = buf.writeInt32BE(8, o);
    o = buf.writeInt32BE(hi, o);
    o = buf.writeUInt32BE(us - hi * 2 ** 32, o);
    o = buf.writeInt32BE(8, o);
    o = buf.writeDoubleBE(r.value, o);
    o = buf.writeInt32BE(2, o);
    o = buf.writeInt16BE(r.quality, o);
    o = buf.writeInt32BE(2, o);
    o = buf.writeInt16BE(r.source, o);
    optionalUuid(r.workOrderId);
    optionalUuid(r.shiftId);
    optionalUuid(r.recipeId);
    if (r.operatorId == null) o = buf.writeInt32BE(-1, o);
    else {
      const len = buf.write(r.operatorId, o + 4, 'utf8');
      o = buf.writeInt32BE(len, o) + len;
    }
  }
  o = buf.writeInt16BE(-1, o); // trailer
  return buf.subarray(0, o);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidBytes(s: string): Buffer {
  // The ids come from our own tables; a malformed one would otherwise be written as garbage bytes.
  if (!UUID.test(s)) throw new Error(`not a uuid: ${s}`);
  return Buffer.from(s.replaceAll('-', ''), 'hex');
}
