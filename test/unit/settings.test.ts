import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config/load.ts';
import { loadSettings, settingsOf, withServices } from '../../lib/config/settings.ts';

const secrets = { HUB_JWT_SECRET: 'j'.repeat(40), HUB_INTERNAL_SECRET: 'i'.repeat(40) };

describe('settings, read once at start', () => {
  it('apply HUB_DATA_DIR, HUB_DEMO_SEED and PORT with no config directory as with one', () => {
    const env = { HUB_DATA_DIR: '/var/lib/hub', HUB_DEMO_SEED: 'true', PORT: '4100' };
    const bare = loadSettings(env);
    expect(bare.configDir).toBeUndefined();
    expect(bare.hub.dataDir).toBe('/var/lib/hub');
    expect(bare.hub.demo.seed).toBe(true);
    expect(bare.port).toBe(4100);
    const withDir = loadSettings({ ...env, ...secrets, DATABASE_URL: 'postgres://h/db', HUB_CONFIG_DIR: 'config' });
    expect(withDir.configDir).toBe('config');
    expect(withDir.hub.dataDir).toBe('/var/lib/hub');
    expect(withDir.hub.demo.seed).toBe(true);
    expect(loadSettings({}).hub.dataDir).toBe('.hub-data');
    expect(loadSettings({}).hub.demo.seed).toBe(false);
  });

  it('read mes.yml and iot.yml from the config directory, their ${VAR}s from the given environment only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-settings-'));
    writeFileSync(
      join(dir, 'mes.yml'),
      'mes:\n  systemType: rest\n  lines: [LINE-1]\n  connection:\n    baseUrl: http://mes.local\n' +
        "    auth: { type: basic, username: u, password: '${MES_PASSWORD}' }\n",
    );
    writeFileSync(join(dir, 'iot.yml'), 'pipeline:\n  batchMaxRows: 123\n');
    writeFileSync(
      join(dir, 'historian.yml'),
      'historians:\n  - name: PI-1\n    type: pi-web-api\n    connection:\n      baseUrl: https://pi.local/piwebapi\n',
    );
    const s = loadSettings({ HUB_CONFIG_DIR: dir, MES_PASSWORD: 'from-the-given-env' });
    expect(s.mes?.connection.auth).toEqual({ type: 'basic', username: 'u', password: 'from-the-given-env' });
    expect(s.iot.pipeline.batchMaxRows).toBe(123);
    expect(s.historian.historians.map((h) => h.name)).toEqual(['PI-1']);
    expect(s.erp).toBeUndefined();
    expect(() => loadSettings({ HUB_CONFIG_DIR: dir })).toThrow(/MES_PASSWORD is not set/);
  });

  it('are frozen: nothing below the assembly can change them; withServices makes a new copy', () => {
    const s = settingsOf({});
    expect(Object.isFrozen(s.hub.database)).toBe(true);
    expect(() => {
      (s.hub.database as { url?: string }).url = 'postgres://changed';
    }).toThrow(TypeError);
    const t = withServices(s, { databaseUrl: 'postgres://embedded/hub', mqttUrl: 'mqtt://embedded:1883' });
    expect(t.hub.database.url).toBe('postgres://embedded/hub');
    expect(t.hub.mqtt.url).toBe('mqtt://embedded:1883');
    expect(s.hub.database.url).toBeUndefined();
    expect(Object.isFrozen(t.hub.mqtt)).toBe(true);
  });

  it('take the subgraph URLs of a gateway from HUB_<NAME>_URL when hub.yml names none', () => {
    const s = loadSettings({ HUB_IOT_URL: 'http://iot:4003/graphql' });
    expect(s.hub.gateway.subgraphUrls).toEqual({ iot: 'http://iot:4003/graphql' });
  });

  it('refuse a value they cannot use with one sentence naming it', () => {
    const refused = (env: Record<string, string>) => {
      try {
        loadSettings(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(refused({ PORT: 'eighty' })).toBe('environment: PORT: "eighty" is not a port number');
    // The same words as hub.yml's seed: ${HUB_DEMO_SEED} takes.
    expect(loadSettings({ HUB_DEMO_SEED: 'on' }).hub.demo.seed).toBe(true);
    expect(loadSettings({ HUB_DEMO_SEED: 'Off' }).hub.demo.seed).toBe(false);
    expect(refused({ HUB_DEMO_SEED: 'perhaps' })).toBe('environment: HUB_DEMO_SEED: "perhaps" is not true or false');
    expect(refused({ HUB_IOT_URL: 'not a url' })).toBe('environment: HUB_IOT_URL: "not a url" is not a URL');
  });
});
