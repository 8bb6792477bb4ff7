/**
 * The record of a run that is committed: bench/results/<scenario>[-quick]-<UTC date and time>.json holds the
 * RESULT line(s), the figures the docs quote, the commit measured (and what was uncommitted), the date, the
 * command, and the machine (CPU model, cores, RAM, Node, Postgres, Mosquitto, Hive Gateway). The full figures
 * (bench/results/<scenario>.json) and the children's logs stay git-ignored. A figure in README.md or
 * docs/benchmarks.md names the summary it comes from.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { BenchOptions } from '../run.ts';
import { MOSQUITTO_BIN } from './broker.ts';
import { PG_ADMIN_URL } from './env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
/** Taken when a scenario module loads, i.e. just before it runs. */
const loadAtStart = loadavg()[0];

const git = (...args: string[]): string => {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

async function postgresVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await client.connect();
    return (await client.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
  } catch (e) {
    return `unknown (${(e as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

function mosquittoVersion(): string {
  try {
    // `mosquitto -h` prints its version first and exits 3.
    execFileSync(MOSQUITTO_BIN, ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const out = String((e as { stdout?: string }).stdout ?? '');
    const m = /mosquitto version (\S+)/.exec(out);
    if (m) return m[1]!;
  }
  return 'unknown';
}

function packageVersion(name: string): string {
  const file = `${ROOT}node_modules/${name}/package.json`;
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : 'not installed';
}

/** BENCH_* settings of the run (they change what is measured); a password in a URL is not written down. */
function benchEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env)
      .filter(([k]) => k.startsWith('BENCH_'))
      .map(([k, v]) => [k, (v ?? '').replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')]),
  );
}

export async function machineFacts() {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ramGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    os: `${type()} ${release()}`,
    node: process.version,
    postgres: await postgresVersion(),
    mosquitto: mosquittoVersion(),
    hiveGateway: packageVersion('@graphql-hive/gateway'),
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg()[0],
  };
}

/**
 * Writes the committed summary of a finished run and returns its path (relative to the repository). `figures`:
 * what the scenario's tables in the docs quote, in plain numbers.
 */
export async function writeSummary(
  scenario: string,
  opts: BenchOptions,
  result: string[],
  figures: unknown,
): Promise<string> {
  const at = new Date();
  const stamp = `${at.toISOString().slice(0, 19).replace(/:/g, '')}Z`;
  const name = `${scenario}${opts.quick ? '-quick' : ''}-${stamp}.json`;
  const summary = {
    scenario,
    quick: opts.quick,
    date: at.toISOString(),
    commit: git('rev-parse', 'HEAD'),
    // What the checkout held beyond that commit (the results folder itself left out).
    uncommittedChanges: git('status', '--porcelain')
      .split('\n')
      .filter((l) => l && !l.slice(3).startsWith('bench/results/')),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    env: benchEnv(),
    machine: await machineFacts(),
    result,
    figures,
    fullFigures: `bench/results/${scenario}.json (git-ignored, overwritten by the next run)`,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}${name}`, `${JSON.stringify(summary, null, 2)}\n`);
  return `bench/results/${name}`;
}
