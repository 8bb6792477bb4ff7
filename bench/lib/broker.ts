/**
 * A private Mosquitto for one bench phase, started like every other bench child (own process group, log in
 * bench/results/logs/, stopped on exit or Ctrl-C). Same idea as test/helpers/mosquitto.ts, but a bench child:
 * its pid is known (CPU accounting) and it is stopped with the others.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/embedded/free-port.ts';
import { nowMs } from './mqtt-publisher.ts';
import { onCleanup, startChild, type Child } from './proc.ts';

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

export interface Broker {
  host: string;
  port: number;
  url: string;
  pid: number;
  child: Child;
  stop(): Promise<void>;
  /**
   * When (nowMs clock) the broker accepted `clientId`'s connection at or after `since`: its "New client connected
   * ... as <clientId> (" notice, stamped as the bench reads it from the broker's stderr. Mosquitto logs it just
   * before it sends the CONNACK and, for a resumed session, the messages queued for it: the moment a consumer's
   * backlog starts to flow, seen by the same observer on the same clock whoever the consumer is.
   */
  connectedAt(clientId: string, since: number, timeoutMs?: number): Promise<number>;
}

/** Follows the broker's stderr for connection notices (the log file gets the same lines). */
function watchConnections(child: Child) {
  const seen: { clientId: string; at: number }[] = [];
  let partial = '';
  child.proc.stderr!.on('data', (chunk: Buffer) => {
    const at = nowMs();
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /New client connected from \S+ as (\S+) \(/.exec(line);
      if (m) seen.push({ clientId: m[1]!, at });
    }
  });
  return async (clientId: string, since: number, timeoutMs = 30_000): Promise<number> => {
    const until = nowMs() + timeoutMs;
    for (;;) {
      const hit = seen.find((c) => c.clientId === clientId && c.at >= since);
      if (hit) return hit.at;
      if (nowMs() > until) throw new Error(`no connection of ${clientId} in ${child.logFile} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
}

/**
 * No persistence (everything in memory: the bench measures consumers, not Mosquitto's disk writes), and
 * `max_queued_messages 0`: the default of 1000 silently drops QoS 1 messages queued for an offline session.
 * Everything else is Mosquitto's default (max_inflight_messages 20 for MQTT 3.1.1 subscribers such as
 * mosquitto_sub; MQTT 5 subscribers such as the hub get their own Receive Maximum honoured). Notices are logged
 * for the connection times (`connectedAt`): one line per connect and disconnect, nothing per message.
 */
export async function startBroker(name: string): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'oee-bench-mosquitto-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = join(dir, `${name}.conf`);
    const lines = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'max_queued_messages 0',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
    ];
    if (process.getuid?.() === 0) lines.push('user root'); // else it drops to `mosquitto`, who cannot read our temp dir
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const child = await startChild(name, MOSQUITTO_BIN, ['-c', conf], { readyLine: false });
    const connectedAt = watchConnections(child);
    // "... running" is logged once the listener is bound (a port that merely accepts may be someone else's).
    const until = Date.now() + 10_000;
    let log = '';
    while (Date.now() < until && child.proc.exitCode === null) {
      log = existsSync(child.logFile) ? readFileSync(child.logFile, 'utf8') : '';
      // This run's log only: a previous run's file is truncated asynchronously, so ask for our port too.
      if (log.includes(`listen socket on port ${port}.`) && /mosquitto version \S+ running/.test(log)) {
        return {
          host: '127.0.0.1',
          port,
          url: `mqtt://127.0.0.1:${port}`,
          pid: child.proc.pid!,
          child,
          stop: child.stop,
          connectedAt,
        };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await child.stop();
    if (attempt < 3 && /Address already in use/i.test(log)) continue;
    throw new Error(`mosquitto (${name}) did not start: ${log.slice(-500)}`);
  }
}
