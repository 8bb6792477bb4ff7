import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The house's shape, checked: lib/ knows nothing above it, the parts know nothing of the assembly, and nothing
 * imports itself round a circle (type-only imports included: a cycle of types is still a knot to untie when
 * reading). Imports are read from the source text, so this needs no build.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const PARTS = ['lib', 'app', 'gateway', 'subgraphs', 'bin'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : files(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Each source file and the project files it imports (relative specifiers only; packages are not ours). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const part of PARTS) {
    for (const f of files(join(ROOT, part))) {
      const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      const deps = [...text.matchAll(IMPORT)]
        .map((m) => m[1] ?? m[2]!)
        .filter((s) => s.startsWith('.'))
        .map((s) => relative(ROOT, resolve(dirname(f), s)));
      g.set(relative(ROOT, f), deps);
    }
  }
  return g;
}

/** Strongly connected components with more than one member (or a self-import): the cycles. */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const g = graph();
const edges = [...g].flatMap(([from, tos]) => tos.map((to) => ({ from, to })));
const top = (p: string) => p.split('/')[0]!;

describe('the layout', () => {
  it('reads the project (a check that finds no files checks nothing)', () => {
    expect(g.size).toBeGreaterThan(150);
    expect(edges.length).toBeGreaterThan(500);
  });

  it('lib/ imports nothing from app/, gateway/, subgraphs/ or bin/', () => {
    expect(edges.filter((e) => top(e.from) === 'lib' && top(e.to) !== 'lib')).toEqual([]);
  });

  it('the gateway and the subgraphs know nothing of the assembly, nor of each other', () => {
    const wrong = edges.filter(
      (e) =>
        (['gateway', 'subgraphs'].includes(top(e.from)) && ['app', 'bin'].includes(top(e.to))) ||
        (top(e.from) === 'gateway' && top(e.to) === 'subgraphs') ||
        (top(e.from) === 'subgraphs' && top(e.to) === 'gateway') ||
        // one subgraph never reaches into another's folder: they meet only in the supergraph
        (top(e.from) === 'subgraphs' && e.from.split('/')[1] !== e.to.split('/')[1] && top(e.to) === 'subgraphs'),
    );
    expect(wrong).toEqual([]);
  });

  it('no file imports itself round a circle', () => {
    expect(cycles(g)).toEqual([]);
  });

  it('every line fits in 120 columns (the formatter cannot break strings or comments: split them by hand)', () => {
    // Generated code is not ours to wrap.
    const skip = (p: string) => p.split('/').includes('__generated__');
    const long = [...PARTS, 'test', 'bench', 'scripts']
      .flatMap((part) => files(join(ROOT, part)))
      .map((f) => relative(ROOT, f))
      .filter((f) => !skip(f))
      .flatMap((f) =>
        readFileSync(join(ROOT, f), 'utf8')
          .split('\n')
          .flatMap((line, i) => (line.length > 120 ? [`${f}:${i + 1}`] : [])),
      );
    expect(long).toEqual([]);
  });

  it('nothing below the assembly reads the environment: settings are read once in app/ and passed down', () => {
    const readers = [...g.keys()].filter(
      (f) => !['app', 'bin'].includes(top(f)) && /process\.env\b/.test(readFileSync(join(ROOT, f), 'utf8')),
    );
    expect(readers).toEqual([]);
  });

  it("lib/'s folders depend on each other one way only", () => {
    // Each folder of lib/ (config, db, telemetry...) and each file at its top is one node.
    const node = (p: string) => (p.split('/').length > 2 ? p.split('/').slice(0, 2).join('/') : p);
    const dirs = new Map<string, string[]>();
    for (const e of edges) {
      if (top(e.from) !== 'lib' || top(e.to) !== 'lib' || node(e.from) === node(e.to)) continue;
      dirs.set(node(e.from), [...(dirs.get(node(e.from)) ?? []), node(e.to)]);
      if (!dirs.has(node(e.to))) dirs.set(node(e.to), []);
    }
    expect(dirs.size).toBeGreaterThan(10);
    expect(cycles(dirs)).toEqual([]);
  });
});
