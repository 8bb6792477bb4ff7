/**
 * Host-side Sparkplug B session state: per edge node (group, node) and per device, the birth certificate
 * (alias → name and datatype), the node's last seq, its bdSeq and whether it is online. `handle` turns one MQTT
 * message into named numeric values, dead letters, and the rebirth request to publish when the stream cannot be
 * trusted (seq gap, unknown alias, data without birth).
 *
 * Sparkplug data is QoS 0, so the only loss signal is a seq gap; it is reported (`seqGap`) for the caller to
 * record, never hidden.
 */
import type { DeadLetter } from '../types.ts';
import { BDSEQ_METRIC, buildRebirthCommand } from './build.ts';
import { decodePayload, interpretValue, type DecodedMetric, type DecodedPayload, type U64 } from './codec.ts';
import { DataType } from './proto.ts';
import { ncmdTopic, parseTopic } from './topic.ts';

export interface SparkplugValue {
  group: string;
  node: string;
  device?: string;
  metric: string;
  ts: Date;
  value: number;
  /** 0..100 when the source says one. Not derived yet: the only common carrier is Ignition's non-standard
   * "Quality" property, whose encoding differs between Ignition versions. */
  quality?: number;
  /** Sparkplug is_historical: a late/backfilled value that must not update "current" views. */
  historical?: true;
}

export interface SparkplugResult {
  /** Numeric and Boolean (0/1) metrics; strings, bytes, DataSets, Templates, DateTimes and nulls are skipped. */
  values: SparkplugValue[];
  deadLetters: DeadLetter[];
  /** NCMD to publish (QoS 0, not retained) asking the node for NBIRTH + DBIRTHs. */
  rebirth?: { topic: string; payload: Buffer };
  /** Messages were lost between `expected` and `got` (mod 256): record as a loss event. */
  seqGap?: { group: string; node: string; expected: number; got: number };
  /** NDEATH (node and all its devices) or DDEATH (that device): its series are stale until the next birth. */
  stale?: { group: string; node: string; device?: string };
  /** A birth was accepted: that node's (or device's) series are live again. */
  birth?: { group: string; node: string; device?: string };
}

export interface SparkplugStateOptions {
  /** At most one rebirth request per edge node per this many ms (default 5000), so a flapping node is not flooded. */
  rebirthIntervalMs?: number;
}

interface MetricDef {
  name: string;
  datatype: number | undefined;
}

class BirthTable {
  readonly byAlias = new Map<U64, MetricDef>();
  readonly byName = new Map<string, MetricDef>();
}

interface DeviceState {
  table: BirthTable;
  online: boolean;
}

interface NodeState {
  online: boolean;
  table: BirthTable;
  bdSeq?: U64;
  lastSeq?: number;
  devices: Map<string, DeviceState>;
  lastRebirthAt?: number;
}

interface Ctx {
  topic: string;
  payload: Buffer;
  receivedAt: Date;
  group: string;
  node: string;
  device?: string;
  out: SparkplugResult;
}

// Int8..Double and Boolean: the datatypes that are measurements. DateTime is a number on the wire but a
// point in time, not a reading.
const MEASUREMENT_TYPES = new Set<number>([
  DataType.Int8,
  DataType.Int16,
  DataType.Int32,
  DataType.Int64,
  DataType.UInt8,
  DataType.UInt16,
  DataType.UInt32,
  DataType.UInt64,
  DataType.Float,
  DataType.Double,
  DataType.Boolean,
]);

/** Session bookkeeping every birth carries (bdSeq, Node/Device Control/*): not process data. */
function isProtocolMetric(name: string): boolean {
  return name === BDSEQ_METRIC || name.startsWith('Node Control/') || name.startsWith('Device Control/');
}

function bdSeqOf(p: DecodedPayload): U64 | undefined {
  const m = p.metrics.find((x) => x.name === BDSEQ_METRIC);
  const v = m?.value;
  return typeof v === 'number' || typeof v === 'bigint' ? v : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SparkplugState {
  private readonly nodes = new Map<string, NodeState>();
  private readonly rebirthIntervalMs: number;

  constructor(opts: SparkplugStateOptions = {}) {
    this.rebirthIntervalMs = opts.rebirthIntervalMs ?? 5000;
  }

  /** Never throws: anything unusable comes back as a dead letter carrying the topic and the raw payload. */
  handle(topic: string, payload: Buffer, receivedAt: Date): SparkplugResult {
    const out: SparkplugResult = { values: [], deadLetters: [] };
    try {
      const t = parseTopic(topic);
      if (t.kind === 'ignored') return out;
      if (t.kind === 'invalid') {
        out.deadLetters.push({ reason: 'SPARKPLUG_PROTOCOL', detail: `bad topic: ${t.detail}`, topic, payload });
        return out;
      }
      let p: DecodedPayload;
      try {
        p = decodePayload(payload);
      } catch (err) {
        out.deadLetters.push({
          reason: 'MALFORMED_PAYLOAD',
          detail: `not a Sparkplug B protobuf: ${errorText(err)}`,
          topic,
          payload,
        });
        return out;
      }
      const ctx: Ctx = { topic, payload, receivedAt, group: t.group, node: t.node, out };
      if (t.kind === 'device') ctx.device = t.device;
      switch (t.type) {
        case 'NBIRTH':
          this.onNodeBirth(ctx, p);
          break;
        case 'NDATA':
          this.onNodeData(ctx, p);
          break;
        case 'NDEATH':
          this.onNodeDeath(ctx, p);
          break;
        case 'DBIRTH':
          this.onDeviceBirth(ctx, p);
          break;
        case 'DDATA':
          this.onDeviceData(ctx, p);
          break;
        case 'DDEATH':
          this.onDeviceDeath(ctx, p);
          break;
      }
    } catch (err) {
      out.deadLetters.push({
        reason: 'SPARKPLUG_PROTOCOL',
        detail: `unexpected error handling the message: ${errorText(err)}`,
        topic,
        payload,
      });
    }
    return out;
  }

  /** What the host currently knows about an edge node (diagnostics, tests). */
  nodeStatus(
    group: string,
    node: string,
  ): { online: boolean; bdSeq?: U64; lastSeq?: number; devices: Record<string, { online: boolean }> } | undefined {
    const s = this.nodes.get(`${group}/${node}`);
    if (!s) return undefined;
    const devices: Record<string, { online: boolean }> = {};
    for (const [id, d] of s.devices) devices[id] = { online: d.online };
    return { online: s.online, bdSeq: s.bdSeq, lastSeq: s.lastSeq, devices };
  }

  // ids cannot contain '/', so the joined key is unambiguous.
  private nodeState(ctx: Ctx): NodeState {
    const key = `${ctx.group}/${ctx.node}`;
    let s = this.nodes.get(key);
    if (!s) {
      s = { online: false, table: new BirthTable(), devices: new Map() };
      this.nodes.set(key, s);
    }
    return s;
  }

  private liveNode(ctx: Ctx): NodeState | undefined {
    const s = this.nodes.get(`${ctx.group}/${ctx.node}`);
    return s?.online ? s : undefined;
  }

  private onNodeBirth(ctx: Ctx, p: DecodedPayload): void {
    const node = this.nodeState(ctx);
    // A new session: every alias of the node and of its devices is void until re-declared. Devices come back
    // with their DBIRTHs right after.
    node.table = new BirthTable();
    node.devices.clear();
    node.bdSeq = bdSeqOf(p);
    node.online = true;
    // NBIRTH must carry seq 0; if an edge node sends something else we anchor on what it sent rather than
    // reporting a gap on its very next message.
    node.lastSeq = undefined;
    if (!this.checkSeq(node, ctx, p)) {
      node.online = false;
      return;
    }
    if (node.lastSeq === undefined) node.lastSeq = 0;
    this.registerBirth(node.table, ctx, p, 'NBIRTH');
    ctx.out.birth = { group: ctx.group, node: ctx.node };
  }

  private onNodeData(ctx: Ctx, p: DecodedPayload): void {
    const node = this.liveNode(ctx);
    if (!node) {
      this.beforeBirth(ctx, 'NDATA before NBIRTH');
      return;
    }
    if (!this.checkSeq(node, ctx, p)) return;
    this.emitData(node.table, ctx, p, 'NBIRTH');
  }

  private onNodeDeath(ctx: Ctx, p: DecodedPayload): void {
    const node = this.liveNode(ctx);
    // Unknown or already dead: nothing is live, so nothing turns stale.
    if (!node) return;
    const bdSeq = bdSeqOf(p);
    // The Will registered at an earlier CONNECT can be delivered after the node has reconnected and sent a new
    // NBIRTH; its bdSeq then differs from the current session's and it must not kill that session.
    if (bdSeq !== undefined && node.bdSeq !== undefined && bdSeq !== node.bdSeq) return;
    node.online = false;
    node.lastSeq = undefined;
    for (const d of node.devices.values()) d.online = false;
    ctx.out.stale = { group: ctx.group, node: ctx.node };
  }

  private onDeviceBirth(ctx: Ctx, p: DecodedPayload): void {
    const node = this.liveNode(ctx);
    if (!node) {
      this.beforeBirth(ctx, 'DBIRTH before NBIRTH');
      return;
    }
    if (!this.checkSeq(node, ctx, p)) return;
    const device: DeviceState = { table: new BirthTable(), online: true };
    node.devices.set(ctx.device!, device);
    this.registerBirth(device.table, ctx, p, 'DBIRTH');
    ctx.out.birth = { group: ctx.group, node: ctx.node, device: ctx.device! };
  }

  private onDeviceData(ctx: Ctx, p: DecodedPayload): void {
    const node = this.liveNode(ctx);
    if (!node) {
      this.beforeBirth(ctx, 'DDATA before NBIRTH');
      return;
    }
    // seq is the node's, so it counts even when this device's data cannot be used.
    if (!this.checkSeq(node, ctx, p)) return;
    const device = node.devices.get(ctx.device!);
    if (!device?.online) {
      this.beforeBirth(ctx, 'DDATA before DBIRTH');
      return;
    }
    this.emitData(device.table, ctx, p, 'DBIRTH');
  }

  private onDeviceDeath(ctx: Ctx, p: DecodedPayload): void {
    const node = this.liveNode(ctx);
    if (!node) return;
    if (!this.checkSeq(node, ctx, p)) return;
    const device = node.devices.get(ctx.device!);
    if (!device?.online) return;
    device.online = false;
    ctx.out.stale = { group: ctx.group, node: ctx.node, device: ctx.device! };
  }

  /** False when the message must be dropped (seq out of range; already dead-lettered). */
  private checkSeq(node: NodeState, ctx: Ctx, p: DecodedPayload): boolean {
    const seq = p.seq;
    if (seq === undefined) {
      // Required by the spec, but the data itself is fine. Without it there is nothing to compare the next seq
      // with, so continuity checking restarts from the next message instead of reporting a false gap.
      node.lastSeq = undefined;
      return true;
    }
    if (typeof seq !== 'number' || seq > 255) {
      this.deadLetter(ctx, `seq ${seq} outside 0..255`);
      node.lastSeq = undefined;
      this.requestRebirth(ctx);
      return false;
    }
    if (node.lastSeq !== undefined) {
      const expected = (node.lastSeq + 1) & 0xff;
      if (seq !== expected) {
        ctx.out.seqGap = { group: ctx.group, node: ctx.node, expected, got: seq };
        this.requestRebirth(ctx);
      }
    }
    // A gap means lost messages, not a changed birth, so this message's aliases still hold and its values are
    // used; the rebirth re-synchronises anyway.
    node.lastSeq = seq;
    return true;
  }

  private registerBirth(table: BirthTable, ctx: Ctx, p: DecodedPayload, kind: 'NBIRTH' | 'DBIRTH'): void {
    const problems: string[] = [];
    for (const m of p.metrics) {
      if (m.name === undefined) {
        problems.push(m.alias !== undefined ? `metric with alias ${m.alias} has no name` : 'metric without name');
        continue;
      }
      const def: MetricDef = { name: m.name, datatype: m.datatype };
      if (m.alias !== undefined) {
        const prev = table.byAlias.get(m.alias);
        if (prev && prev.name !== m.name) problems.push(`alias ${m.alias} used by both "${prev.name}" and "${m.name}"`);
        table.byAlias.set(m.alias, def);
      }
      table.byName.set(m.name, def);
      this.emit(ctx, p, m, def);
    }
    // The rest of the birth is still usable, and a rebirth would repeat the same mistake, so no request here.
    if (problems.length > 0) this.deadLetter(ctx, `${kind}: ${problems.join('; ')}`);
  }

  private emitData(table: BirthTable, ctx: Ctx, p: DecodedPayload, birthKind: 'NBIRTH' | 'DBIRTH'): void {
    let unknownAliases: U64[] | undefined;
    let unnamed = 0;
    for (const m of p.metrics) {
      let def = m.alias !== undefined ? table.byAlias.get(m.alias) : undefined;
      if (!def && m.name !== undefined) def = table.byName.get(m.name) ?? { name: m.name, datatype: m.datatype };
      if (def) {
        this.emit(ctx, p, m, def);
      } else if (m.alias !== undefined) {
        unknownAliases ??= [];
        unknownAliases.push(m.alias);
      } else {
        unnamed++;
      }
    }
    // One dead letter per message (it carries the whole raw payload), listing every metric it could not place.
    if (unknownAliases) {
      this.deadLetter(ctx, `unknown alias ${unknownAliases.join(', ')} (not in the ${birthKind})`);
      this.requestRebirth(ctx);
    }
    if (unnamed > 0) this.deadLetter(ctx, `${unnamed} metric(s) with neither name nor alias`);
  }

  private emit(ctx: Ctx, p: DecodedPayload, m: DecodedMetric, def: MetricDef): void {
    // An explicit null is the edge saying "no value now": there is no reading to store, and it is not an error.
    if (m.isNull || isProtocolMetric(def.name)) return;
    const datatype = m.datatype ?? def.datatype;
    if (datatype !== undefined && !MEASUREMENT_TYPES.has(datatype)) return;
    // DATA metrics normally omit the datatype; integers must then be re-read with the birth's (an Int32 -1 would
    // read as 4294967295). Float, double and bool fields do not depend on it.
    const isInt = m.raw.kind === 'int' || m.raw.kind === 'long';
    const reread = isInt && m.datatype === undefined && def.datatype !== undefined;
    const v = reread ? interpretValue(m.raw, def.datatype) : m.value;
    let value: number;
    switch (typeof v) {
      case 'number':
        value = v;
        break;
      case 'bigint':
        // Beyond ±2^53: rounded to the nearest double (an exact bigint cannot go through the numeric pipeline).
        value = Number(v);
        break;
      case 'boolean':
        value = v ? 1 : 0;
        break;
      default:
        return;
    }
    // 0 is treated as "not set": edge stacks write it when they have no clock, and 1970 is never a real reading.
    const tsMs = m.timestamp || p.timestamp;
    const out: SparkplugValue = {
      group: ctx.group,
      node: ctx.node,
      metric: def.name,
      ts: tsMs ? new Date(tsMs) : ctx.receivedAt,
      value,
    };
    if (ctx.device !== undefined) out.device = ctx.device;
    if (m.isHistorical) out.historical = true;
    ctx.out.values.push(out);
  }

  /** Data the host cannot interpret until the node (re)births: dead letter, and ask for the birth. */
  private beforeBirth(ctx: Ctx, detail: string): void {
    this.deadLetter(ctx, detail);
    this.requestRebirth(ctx);
  }

  private requestRebirth(ctx: Ctx): void {
    if (ctx.out.rebirth) return;
    const node = this.nodeState(ctx);
    const received = ctx.receivedAt.getTime();
    const now = Number.isNaN(received) ? Date.now() : received;
    const last = node.lastRebirthAt;
    // A clock that went backwards does not block requests until it catches up.
    if (last !== undefined && now >= last && now - last < this.rebirthIntervalMs) return;
    node.lastRebirthAt = now;
    ctx.out.rebirth = { topic: ncmdTopic(ctx.group, ctx.node), payload: buildRebirthCommand(now) };
  }

  private deadLetter(ctx: Ctx, detail: string): void {
    ctx.out.deadLetters.push({ reason: 'SPARKPLUG_PROTOCOL', detail, topic: ctx.topic, payload: ctx.payload });
  }
}
