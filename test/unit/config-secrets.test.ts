import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadErpConfig } from '../../lib/config/erp.ts';
import { ConfigError } from '../../lib/config/load.ts';
import { loadMesConfig } from '../../lib/config/mes.ts';

const dirWith = (file: string, yaml: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-secrets-'));
  writeFileSync(join(dir, file), yaml);
  return dir;
};
const mes = (auth: string) =>
  'mes:\n  systemType: rest\n  connection:\n    baseUrl: https://mes.example.com\n' +
  `    auth: ${auth}\n  lines: [LINE-1]\n`;
const erp = (auth: string) =>
  'erp:\n  systemType: sap_odata\n  connection:\n    baseUrl: https://s4.example.com\n' +
  `    auth: ${auth}\n  sap: { plant: '1710' }\n`;
const refusal = (load: () => unknown) => {
  try {
    load();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('secrets in mes.yml and erp.yml come only from the environment', () => {
  it.each([
    [
      'an OAuth2 client secret',
      '{ type: oauth2, tokenUrl: https://mes.example.com/t, clientId: hub, clientSecret: s3cr3t-literal }',
      'mes.connection.auth.clientSecret',
      'MES_CLIENT_SECRET',
    ],
    [
      'a password',
      '{ type: basic, username: hub, password: s3cr3t-literal }',
      'mes.connection.auth.password',
      'MES_PASSWORD',
    ],
    ['an API key', '{ type: apiKey, key: s3cr3t-literal }', 'mes.connection.auth.key', 'MES_API_KEY'],
    [
      'a reference with a literal default',
      '{ type: basic, username: hub, password: "${MES_PW:-s3cr3t-literal}" }',
      'mes.connection.auth.password',
      'MES_PASSWORD',
    ],
    [
      'a literal around a reference',
      '{ type: basic, username: hub, password: "x${MES_PW}" }',
      'mes.connection.auth.password',
      'MES_PASSWORD',
    ],
  ])('refuses %s written in mes.yml, naming the file and the key', (_what, auth, key, example) => {
    const dir = dirWith('mes.yml', mes(auth));
    const msg = refusal(() => loadMesConfig(dir, { MES_PW: 'from-env' }));
    expect(msg).toBe(
      `${join(dir, 'mes.yml')}: ${key}: must come from the environment, e.g. \${${example}} (a literal secret ` +
        `is refused)`,
    );
    expect(msg).not.toContain('s3cr3t-literal');
  });

  it('refuses a literal password in erp.yml', () => {
    const dir = dirWith('erp.yml', erp('{ type: basic, username: hub, password: s3cr3t-literal }'));
    expect(refusal(() => loadErpConfig(dir, {}))).toMatch(
      /erp\.yml: erp\.connection\.auth\.password: must come from the environment, e\.g\. \$\{ERP_PASSWORD\}/,
    );
  });

  it('takes secrets written as ${VAR} from the environment (non-secret fields may stay literal)', () => {
    const m = loadMesConfig(
      dirWith(
        'mes.yml',
        mes('{ type: oauth2, tokenUrl: https://mes.example.com/t, clientId: hub, clientSecret: "${MES_SECRET}" }'),
      ),
      { MES_SECRET: 'from-env' },
    )!;
    expect(m.connection.auth).toMatchObject({ clientId: 'hub', clientSecret: 'from-env' });
    const e = loadErpConfig(dirWith('erp.yml', erp('{ type: basic, username: hub, password: "${SAP_PW}" }')), {
      SAP_PW: 'pw-from-env',
    })!;
    expect(e.connection.auth).toMatchObject({ username: 'hub', password: 'pw-from-env' });
  });
});

describe('mes.yml and erp.yml are read once', () => {
  it('turns a malformed mes.yml into a ConfigError naming the file', () => {
    const dir = dirWith('mes.yml', 'mes:\n  enabled: [false\n');
    const msg = refusal(() => loadMesConfig(dir, {}));
    expect(msg.startsWith(`${join(dir, 'mes.yml')}: `)).toBe(true);
    expect(msg).toMatch(/: line \d+, column \d+: invalid YAML/);
  });

  it('skips a switched-off system without asking for its secrets', () => {
    expect(
      loadMesConfig(
        dirWith('mes.yml', `${mes('{ type: basic, username: hub, password: "${MES_PW}" }')}  enabled: false\n`),
        {},
      ),
    ).toBeUndefined();
    expect(
      loadErpConfig(
        dirWith('erp.yml', `${erp('{ type: basic, username: hub, password: "${SAP_PW}" }')}  enabled: false\n`),
        {},
      ),
    ).toBeUndefined();
  });
});
