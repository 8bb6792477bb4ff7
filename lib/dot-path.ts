export type Getter = (doc: unknown) => unknown;
const compiled = new Map<string, Getter>();

/** `a.b[0].c` (or `a.b.0.c`) → a getter; compiled once per path, since the same few paths run for every message. */
export function getter(path: string): Getter {
  let g = compiled.get(path);
  if (!g) {
    const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
    g = (doc) => {
      let cur: unknown = doc;
      for (const k of keys) {
        if (cur === null || typeof cur !== 'object') return undefined;
        cur = (cur as Record<string, unknown>)[k];
      }
      return cur;
    };
    compiled.set(path, g);
  }
  return g;
}
