/**
 * A private Mosquitto for one bench phase, started like every other bench child (own process group, log in
 * bench/results/logs/, stopped on exit or Ctrl-C). Same idea as test/helpers/mosquitto.ts, but a bench child:
 * its pid is known (CPU accounting) and it is stopped with the others.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/embedded/free-port.ts';
import { onCleanup, startChild, type Child } from './proc.ts';

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

export interface Broker {
  host: string;
  port: number;
  url: string;
  pid: number;
  child: Child;
  stop(): Promise<void>;
}

/**
 * No persistence (everything in memory: the bench measures consumers, not Mosquitto's disk writes), and
 * `max_queued_messages 0`: the default of 1000 silently drops QoS 1 messages queued for an offline session.
 * Everything else is Mosquitto's default (max_inflight_messages 20 for MQTT 3.1.1 subscribers such as
 * mosquitto_sub; MQTT 5 subscribers such as the hub get their own Receive Maximum honoured).
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
      'log_type information',
    ];
    if (process.getuid?.() === 0) lines.push('user root'); // else it drops to `mosquitto`, who cannot read our temp dir
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const child = await startChild(name, MOSQUITTO_BIN, ['-c', conf], { readyLine: false });
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
        };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await child.stop();
    if (attempt < 3 && /Address already in use/i.test(log)) continue;
    throw new Error(`mosquitto (${name}) did not start: ${log.slice(-500)}`);
  }
}
