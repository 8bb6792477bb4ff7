/**
 * Bench dispatcher: `tsx bench/run.ts <scenario> [--quick] [--duration s] [--connections n] [--warmup s]`
 * (or `npm run bench -- <scenario> ...`). A scenario is bench/scenarios/<name>.ts exporting `run(opts)`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cleanup } from './lib/proc.ts';

export interface BenchOptions {
  quick: boolean;
  /** Measured seconds per target (warm-up comes on top). */
  duration: number;
  connections: number;
  /** Warm-up seconds per target before measuring. */
  warmup: number;
}

const scenariosDir = fileURLToPath(new URL('./scenarios/', import.meta.url));
const available = readdirSync(scenariosDir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));

function usage(msg?: string): never {
  if (msg) console.error(msg);
  console.error(`usage: npm run bench -- <scenario> [--quick] [--duration s] [--connections n] [--warmup s]\nscenarios: ${available.join(', ')}`);
  process.exit(2);
}

function parseArgs(argv: string[]): { scenario: string; opts: BenchOptions } {
  let scenario: string | undefined;
  let quick = false;
  let duration: number | undefined;
  let connections = 16;
  let warmup = 2;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (name: string) => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) usage(`${name} needs a positive number`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--duration') duration = num(a);
    else if (a === '--connections') connections = Math.round(num(a));
    else if (a === '--warmup') warmup = num(a);
    else if (a === '--help' || a === '-h') usage();
    else if (!a.startsWith('-') && !scenario) scenario = a;
    else usage(`unknown argument ${a}`);
  }
  if (!scenario) usage('name a scenario');
  if (!/^[\w-]+$/.test(scenario) || !existsSync(`${scenariosDir}${scenario}.ts`)) usage(`no scenario "${scenario}"`);
  return { scenario, opts: { quick, duration: duration ?? (quick ? 5 : 15), connections, warmup } };
}

const { scenario, opts } = parseArgs(process.argv.slice(2));
let code = 0;
try {
  const mod = (await import(`./scenarios/${scenario}.ts`)) as { run: (o: BenchOptions) => Promise<void> };
  await mod.run(opts);
} catch (e) {
  console.error(`\nbench ${scenario} failed: ${(e as Error).message}`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
