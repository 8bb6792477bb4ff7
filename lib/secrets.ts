import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HubConfig } from './config/hub.ts';
import { ConfigError } from './config/load.ts';

export interface Secrets {
  jwtSecret?: string;
  jwksUrl?: string;
  internalSecret: string;
  /** True when they were generated for a local development hub. */
  generated: boolean;
}

/**
 * Subgraphs need only the internal secret (`needsUserAuth` false); the gateway needs both.
 * Secrets come from the environment (via hub.yml or env vars). Only a local development hub may generate
 * them, kept in the git-ignored data folder so a dev token survives a restart.
 */
export function resolveSecrets(cfg: HubConfig, allowGenerate: boolean, needsUserAuth = true): Secrets {
  const { secret, jwksUrl } = cfg.auth.jwt;
  if ((secret || jwksUrl || !needsUserAuth) && cfg.auth.internalSecret) {
    return { jwtSecret: secret, jwksUrl, internalSecret: cfg.auth.internalSecret, generated: false };
  }
  if (!allowGenerate) {
    const jwtMissing = !!cfg.auth.internalSecret;
    const key = jwtMissing ? 'auth.jwt.secret' : 'auth.internalSecret';
    const env = jwtMissing ? 'HUB_JWT_SECRET (or HUB_JWKS_URL)' : 'HUB_INTERNAL_SECRET';
    throw new ConfigError('hub.yml', key, `is required (set ${env}, at least 32 characters)`);
  }
  const file = join(cfg.dataDir, 'secrets.json');
  let stored: { jwtSecret: string; internalSecret: string };
  if (existsSync(file)) stored = JSON.parse(readFileSync(file, 'utf8'));
  else {
    stored = {
      jwtSecret: randomBytes(32).toString('base64url'),
      internalSecret: randomBytes(32).toString('base64url'),
    };
    mkdirSync(cfg.dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(stored), { mode: 0o600 });
  }
  return {
    jwtSecret: secret ?? (jwksUrl ? undefined : stored.jwtSecret),
    jwksUrl,
    internalSecret: cfg.auth.internalSecret ?? stored.internalSecret,
    generated: true,
  };
}
