import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/embedded/free-port.ts';

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

export interface MosquittoOptions {
  /** Default: true when dataDir is given, else false. */
  persistence?: boolean;
  /** Where the persistence file goes (kept on stop); a temp dir (removed on stop) when not given. */
  dataDir?: string;
}

export interface MosquittoBroker {
  url: string;
  port: number;
  /** SIGTERM, wait for exit (so persistence is written), remove the temp dirs this helper made. */
  stop(): Promise<void>;
  /** Stop and start again on the same port with the same config and data dir. */
  restart(): Promise<void>;
}

// Brokers still running when the test process exits would outlive it and hold their ports.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A private Mosquitto on a free 127.0.0.1 port, with a config made for tests (no queue limit). */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  // The free port can be taken by someone else before mosquitto binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnPort(await freePort(), opts);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

async function startOnPort(port: number, opts: MosquittoOptions): Promise<MosquittoBroker> {
  const persistence = opts.persistence ?? opts.dataDir !== undefined;
  const confDir = mkdtempSync(join(tmpdir(), 'mosquitto-test-'));
  const dataDir = opts.dataDir ?? join(confDir, 'data');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    // The default (1000) silently drops QoS 1 messages queued for an offline session: never what a test wants.
    'max_queued_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type information', // "... running": the listeners are bound (a port that merely accepts may be someone else's)
  ];
  // As root, mosquitto drops to the `mosquitto` user, which cannot write into our 0700 temp dirs.
  if (process.getuid?.() === 0) lines.push('user root');
  if (persistence) {
    lines.push('persistence true', `persistence_location ${dataDir}/`, 'autosave_interval 1');
    mkdirSync(dataDir, { recursive: true });
  }
  const confFile = join(confDir, 'mosquitto.conf');
  writeFileSync(confFile, `${lines.join('\n')}\n`);

  let child: ChildProcess | undefined;
  let log = '';

  const launch = async () => {
    log = '';
    const proc = spawn(MOSQUITTO, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    running.add(proc);
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      log = (log + s).slice(-4000);
    });
    proc.once('exit', () => running.delete(proc));
    await waitForPort(port, proc, () => log);
  };

  const halt = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  await launch().catch((err) => {
    rmSync(confDir, { recursive: true, force: true });
    throw err;
  });

  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async stop() {
      await halt();
      rmSync(confDir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await launch();
    },
  };
}

async function waitForPort(port: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`mosquitto exited (${proc.exitCode ?? proc.signalCode}) before listening on ${port}: ${log()}`);
    }
    if (/mosquitto version \S+ running/.test(log()) && (await canConnect(port))) return;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms: ${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
