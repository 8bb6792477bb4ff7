import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Child processes' logs go here, so a failed start can be diagnosed without cluttering the bench output. */
export const LOG_DIR = fileURLToPath(new URL('../results/logs/', import.meta.url));

export interface Child {
  name: string;
  proc: ChildProcess;
  /** The JSON object the child printed after `READY ` (its URLs). */
  ready: Record<string, unknown>;
  logFile: string;
  stop: () => Promise<void>;
}

const children = new Set<ChildProcess>();
/** Children we asked to stop: their exit is expected, whatever its code. */
const stopping = new WeakSet<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];

/** Runs `fn` on normal exit, error or Ctrl-C (after the children are gone), e.g. dropping the bench database. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

function killAll(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const p of children) {
    // Each child leads its own process group (detached), so this also reaches anything it spawned.
    try {
      process.kill(-p.pid!, signal);
    } catch {
      /* already gone */
    }
  }
}

let cleaning: Promise<void> | undefined;
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map((p) => stopProcess(p)));
    for (const fn of cleanups.splice(0).reverse())
      await Promise.resolve(fn()).catch((e) => console.error('cleanup:', e.message));
  })();
  return cleaning;
}

// A synchronous last resort: whatever way the bench ends, no child outlives it.
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    // tsx forwards the terminal's Ctrl-C as well, so this can arrive twice.
    if (!cleaning) console.error(`\n${sig}: stopping child processes`);
    void cleanup().finally(() => process.exit(130));
  });
}

function stopProcess(p: ChildProcess, graceMs = 3000): Promise<void> {
  stopping.add(p);
  if (p.exitCode !== null || p.signalCode !== null) {
    children.delete(p);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    p.once('exit', () => {
      clearTimeout(timer);
      children.delete(p);
      resolve();
    });
    try {
      process.kill(-p.pid!, 'SIGTERM');
    } catch {
      resolve();
    }
  });
}

/**
 * Starts `command args` in its own process group and waits until it prints a line `READY {json}` on stdout.
 * Everything else it prints (pino logs, Hive's logs) goes to bench/results/logs/<name>.log.
 * With `readyLine: false` the child is considered started at once (use waitForHttp afterwards). `stdin: 'pipe'`
 * gives it a pipe (child.proc.stdin); `stdout` hands it that stream (e.g. another child's stdin: a shell pipe
 * `a | b` whose ends start in the order we choose), and then it prints no READY line.
 */
export async function startChild(
  name: string,
  command: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    readyLine?: boolean;
    timeoutMs?: number;
    stdin?: 'ignore' | 'pipe';
    stdout?: Writable;
  } = {},
): Promise<Child> {
  if (opts.stdout && opts.readyLine !== false) throw new Error(`${name}: a child writing elsewhere prints no READY`);
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = `${LOG_DIR}${name}.log`;
  const log = createWriteStream(logFile);
  const proc = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', 'pipe'],
    detached: true,
  });
  children.add(proc);
  proc.stderr!.pipe(log, { end: false });
  const lines = proc.stdout ? createInterface({ input: proc.stdout }) : undefined;
  const stop = () => stopProcess(proc);

  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${opts.timeoutMs ?? 120_000} ms; see ${logFile}`)),
      opts.timeoutMs ?? 120_000,
    );
    if (opts.readyLine === false) {
      clearTimeout(timer);
      resolve({});
    }
    lines?.on('line', (line) => {
      if (line.startsWith('READY ')) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice(6)));
      } else log.write(`${line}\n`);
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before it was ready; see ${logFile}`));
    });
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  proc.on('exit', (code, signal) => {
    children.delete(proc);
    if (!stopping.has(proc) && code !== 0)
      console.error(`! ${name} exited unexpectedly (${signal ?? code}); see ${logFile}`);
  });
  return { name, proc, ready, logFile, stop };
}

/** Polls `url` until it answers 200 (each child's /healthz, Hive's /readiness); gives up if `child` exits. */
export async function waitForHttp(url: string, child?: Child, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.proc.exitCode !== null)
      throw new Error(`${child.name} exited (${child.proc.exitCode}); see ${child.logFile}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `node --import tsx <script>`: a TypeScript child without the npx/npm wrapper processes in between. */
export function tsxArgs(script: string, ...args: string[]): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', script, ...args]];
}
