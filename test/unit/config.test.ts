import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHubConfig } from '../../lib/config/hub.ts';
import { ConfigError } from '../../lib/config/load.ts';

function dirWith(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-cfg-'));
  writeFileSync(join(dir, 'hub.yml'), yaml);
  return dir;
}

const fails = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
  const dir = dirWith(yaml);
  try {
    loadHubConfig(env, dir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message.replace(dir, '<dir>');
  }
  throw new Error('expected a ConfigError');
};

describe('hub.yml', () => {
  it('interpolates ${ENV} and ${ENV:-default}', () => {
    const dir = dirWith(
      'database:\n  url: ${DB}\ngateway:\n  port: ${PORT:-4100}\nauth:\n  internalSecret: ${SECRET}\n',
    );
    const cfg = loadHubConfig({ DB: 'postgres://x/y', SECRET: 's'.repeat(40) }, dir);
    expect(cfg.database.url).toBe('postgres://x/y');
    expect(cfg.gateway.port).toBe(4100);
    expect(cfg.auth.internalSecret).toBe('s'.repeat(40));
  });

  it(`loads the documented example (config/hub.yml, \
as docker-compose uses it) with only the required variables`, () => {
    const env = {
      DATABASE_URL: 'postgres://hub@db/hub',
      HUB_JWT_SECRET: 'j'.repeat(40),
      HUB_INTERNAL_SECRET: 'i'.repeat(40),
    };
    const cfg = loadHubConfig(env, 'config');
    expect(cfg.auth.jwt).toMatchObject({ secret: 'j'.repeat(40), jwksUrl: undefined });
    expect(cfg.demo.seed).toBe(false);
    expect(cfg.gateway.subscriptions).toEqual({
      entityBatchWindowMs: 5,
      entityCacheMs: 1000,
      upstreamGiveUpMs: 30000,
      highWaterBytes: 262144,
      pingIntervalMs: 12000,
    });
    expect(loadHubConfig({ ...env, HUB_DEMO_SEED: 'true' }, 'config').demo.seed).toBe(true);
  });

  it('names the file, the key and the problem', () => {
    expect(fails('gateway:\n  port: seventy\n')).toMatch(/^<dir>\/hub\.yml: gateway\.port: .*number/i);
    expect(fails('auth:\n  jwt:\n    secret: short\n')).toBe(
      '<dir>/hub.yml: auth.jwt.secret: must be at least 32 characters',
    );
    expect(fails('database:\n  url: ${NOT_SET}\n')).toBe(
      '<dir>/hub.yml: database.url: environment variable NOT_SET is not set',
    );
    expect(fails('gatway:\n  port: 1\n')).toMatch(/^<dir>\/hub\.yml: .*gatway/);
    expect(fails('gateway: [1, 2\n')).toMatch(/^<dir>\/hub\.yml: line \d+, column \d+: invalid YAML/);
  });

  it('falls back to environment variables and defaults without a config directory', () => {
    const cfg = loadHubConfig({ DATABASE_URL: 'postgres://a/b', MQTT_URL: 'mqtt://m:1883' }, undefined);
    expect(cfg.database.url).toBe('postgres://a/b');
    expect(cfg.mqtt.url).toBe('mqtt://m:1883');
    expect(cfg.gateway.port).toBe(4000);
  });
});
