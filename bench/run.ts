/**
 * Bench dispatcher: `tsx bench/run.ts <scenario> [--quick] [--duration s] [--connections n] [--warmup s]
 * [--rate n] [--messages n] [--soak minutes] [--receive-maximum n] [--clients n] [--machines n]` (or `npm run bench --
 * <scenario> ...`). A scenario is bench/scenarios/<name>.ts exporting `run(opts)`; options a scenario has no use for
 * are ignored by it.
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
  /** Which of duration / connections / warmup were given on the command line (else: the generic defaults). */
  given: { duration: boolean; connections: boolean; warmup: boolean };
  /** ingest: publish rate (msgs/s) of the live measure. */
  rate?: number;
  /** ingest: messages queued for the drain measure. */
  messages?: number;
  /** ingest: run only the soak, for this many minutes. */
  soak?: number;
  /** ingest: the hub's mqtt.receiveMaximum (iot.yml). */
  receiveMaximum?: number;
  /** subscriptions: concurrent graphql-ws clients, and the machines they spread over. */
  clients?: number;
  machines?: number;
}

const scenariosDir = fileURLToPath(new URL('./scenarios/', import.meta.url));
const available = readdirSync(scenariosDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3));

function usage(msg?: string): never {
  if (msg) console.error(msg);
  console.error(
    `usage: npm run bench -- <scenario> [--quick] [--duration s] [--connections n] [--warmup s] [--rate n] ` +
      `[--messages n] [--soak minutes] [--receive-maximum n] [--clients n] [--machines n]\nscenarios: ` +
      `${available.join(', ')}`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): { scenario: string; opts: BenchOptions } {
  let scenario: string | undefined;
  let quick = false;
  let duration: number | undefined;
  let connections: number | undefined;
  let warmup: number | undefined;
  let rate: number | undefined;
  let messages: number | undefined;
  let soak: number | undefined;
  let receiveMaximum: number | undefined;
  let clients: number | undefined;
  let machines: number | undefined;
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
    else if (a === '--rate') rate = Math.round(num(a));
    else if (a === '--messages') messages = Math.round(num(a));
    else if (a === '--soak') soak = num(a);
    else if (a === '--receive-maximum') receiveMaximum = Math.round(num(a));
    else if (a === '--clients') clients = Math.round(num(a));
    else if (a === '--machines') machines = Math.round(num(a));
    else if (a === '--help' || a === '-h') usage();
    else if (!a.startsWith('-') && !scenario) scenario = a;
    else usage(`unknown argument ${a}`);
  }
  if (!scenario) usage('name a scenario');
  if (!/^[\w-]+$/.test(scenario) || !existsSync(`${scenariosDir}${scenario}.ts`)) usage(`no scenario "${scenario}"`);
  return {
    scenario,
    opts: {
      quick,
      duration: duration ?? (quick ? 5 : 15),
      connections: connections ?? 16,
      warmup: warmup ?? 2,
      given: { duration: duration !== undefined, connections: connections !== undefined, warmup: warmup !== undefined },
      rate,
      messages,
      soak,
      receiveMaximum,
      clients,
      machines,
    },
  };
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
