import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';

/** A configuration problem: always names the file, the key and what is wrong, so a start fails with a useful line. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    problem: string,
  ) {
    super(`${file}: ${key ? `${key}: ` : ''}${problem}`);
    this.name = 'ConfigError';
  }
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${VAR}` and `${VAR:-default}` in every string value; an unset VAR without default is an error. */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, file: string, path: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(file, path.join('.'), `environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, file, [...path, String(i)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, file, [...path, k])]));
  }
  return value;
}

/**
 * A key whose value may only be a whole `${VAR}` reference (no literal, no `:-default`), and the variable a message
 * suggests.
 */
export interface EnvOnlyKey {
  path: string[];
  example: string;
}

const WHOLE_ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/**
 * Refuses a literal where only an environment reference may stand (secrets): checked before interpolation. A `*` in
 * a path stands for every entry of a list or map there (each historian of historian.yml).
 */
export function requireEnvRefs(raw: unknown, file: string, keys: EnvOnlyKey[]): void {
  for (const k of keys) {
    for (const { at, v } of valuesAt(raw, k.path, [])) {
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string' || !WHOLE_ENV_REF.test(v.trim())) {
        throw new ConfigError(
          file,
          at.join('.'),
          `must come from the environment, e.g. \${${k.example}} (a literal secret is refused)`,
        );
      }
    }
  }
}

function valuesAt(v: unknown, path: string[], at: string[]): { at: string[]; v: unknown }[] {
  if (path.length === 0) return [{ at, v }];
  if (!v || typeof v !== 'object') return [];
  const [head, ...rest] = path as [string, ...string[]];
  const entries = head === '*' ? Object.entries(v) : [[head, (v as Record<string, unknown>)[head]] as const];
  return entries.flatMap(([key, child]) => valuesAt(child, rest, [...at, key]));
}

/**
 * Reads one YAML file of the config directory, interpolates the environment and validates it.
 * A missing optional file yields the schema's defaults for `{}`. `envOnly` keys must be `${VAR}` references.
 * `skip(raw)`, given the parsed document before interpolation, returns undefined without further checks when true
 * (a switched-off section needs none of its `${VAR}`s set).
 */
export function loadYamlConfig<S extends z.ZodType>(
  dir: string | undefined,
  fileName: string,
  schema: S,
  env?: NodeJS.ProcessEnv,
  envOnly?: EnvOnlyKey[],
): z.output<S>;
export function loadYamlConfig<S extends z.ZodType>(
  dir: string | undefined,
  fileName: string,
  schema: S,
  env: NodeJS.ProcessEnv | undefined,
  envOnly: EnvOnlyKey[] | undefined,
  skip: (raw: unknown) => boolean,
): z.output<S> | undefined;
export function loadYamlConfig<S extends z.ZodType>(
  dir: string | undefined,
  fileName: string,
  schema: S,
  env: NodeJS.ProcessEnv = {},
  envOnly: EnvOnlyKey[] = [],
  skip?: (raw: unknown) => boolean,
): z.output<S> | undefined {
  const file = dir ? join(dir, fileName) : fileName;
  let raw: unknown = {};
  if (dir && existsSync(file)) {
    const doc = parseDocument(readFileSync(file, 'utf8'));
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new ConfigError(file, where, `invalid YAML: ${e.message.split('\n')[0]}`);
    }
    raw = doc.toJS() ?? {};
  }
  if (skip?.(raw)) return undefined;
  requireEnvRefs(raw, file, envOnly);
  const result = schema.safeParse(interpolate(raw, env, file));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(file, issue.path.join('.'), issue.message);
  }
  return result.data;
}
