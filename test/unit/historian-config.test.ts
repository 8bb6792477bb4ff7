import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHistorianConfig } from '../../lib/config/historian.ts';
import { createHistorianConnector } from '../../lib/connectors/index.ts';
import { AvevaHistorianConnector } from '../../lib/connectors/historian/aveva.ts';
import { PiWebApiConnector } from '../../lib/connectors/historian/pi.ts';

/** historian.yml as a plant engineer writes it: historians (PI Web API, AVEVA), then tag mappings onto sensors. */
const write = (yaml: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-historian-'));
  writeFileSync(join(dir, 'historian.yml'), yaml);
  return dir;
};

const TWO = `historians:
  - name: PI-SITE1
    type: pi-web-api
    connection:
      baseUrl: https://pi.example.com/piwebapi
      auth: { type: basic, username: hub, password: "\${PI_PASSWORD}" }
  - name: AVEVA-1
    type: aveva-rest
    connection:
      baseUrl: http://hist.example.com:32569
      auth: { type: basic, username: hub, password: "\${AVEVA_PASSWORD}" }
    pageSize: 2000
tagMappings:
  - { historian: PI-SITE1, tag: '\\\\PISRV1\\FIC101.PV', machineId: M-101, signalType: flow, unit: m3/s, scale: 0.001 }
  - { historian: AVEVA-1, tag: Baytown.tank_level, machineId: M-102, signalType: level, unit: m, offset: -2.5 }
`;

describe('historian.yml', () => {
  it('reads historians of both kinds and their tag mappings, secrets from the environment', () => {
    const cfg = loadHistorianConfig(write(TWO), { PI_PASSWORD: 'pi-pw', AVEVA_PASSWORD: 'av-pw' });
    expect(cfg.historians.map((h) => [h.name, h.type, h.connection.auth])).toEqual([
      ['PI-SITE1', 'pi-web-api', { type: 'basic', username: 'hub', password: 'pi-pw' }],
      ['AVEVA-1', 'aveva-rest', { type: 'basic', username: 'hub', password: 'av-pw' }],
    ]);
    const [pi, aveva] = cfg.historians;
    expect(pi).toMatchObject({ maxCount: 10_000 });
    expect(aveva).toMatchObject({ basePath: '/Historian/v2', pageSize: 2000 });
    expect(cfg.tagMappings).toEqual([
      {
        historian: 'PI-SITE1',
        tag: '\\\\PISRV1\\FIC101.PV',
        machineId: 'M-101',
        signalType: 'flow',
        scale: 0.001,
        offset: 0,
        unit: 'm3/s',
      },
      {
        historian: 'AVEVA-1',
        tag: 'Baytown.tank_level',
        machineId: 'M-102',
        signalType: 'level',
        unit: 'm',
        scale: 1,
        offset: -2.5,
      },
    ]);
  });

  it('gives each historian the connector of its family', () => {
    const cfg = loadHistorianConfig(write(TWO), { PI_PASSWORD: 'pi-pw', AVEVA_PASSWORD: 'av-pw' });
    const [pi, aveva] = cfg.historians.map(createHistorianConnector);
    expect(pi).toBeInstanceOf(PiWebApiConnector);
    expect(aveva).toBeInstanceOf(AvevaHistorianConnector);
    expect([pi!.name, aveva!.name]).toEqual(['PI-SITE1', 'AVEVA-1']);
    for (const c of [pi!, aveva!]) c.close();
  });

  it('no file: no historians, and the backfill and frontfill defaults', () => {
    expect(loadHistorianConfig(mkdtempSync(join(tmpdir(), 'hub-historian-')), {})).toEqual({
      historians: [],
      tagMappings: [],
      backfill: { leaseSeconds: 30, maxTagAttempts: 3, checkpointMs: 500 },
      frontfill: { enabled: true, intervalSeconds: 30, lagSeconds: 5, initialLookbackMinutes: 60 },
    });
  });

  const refused = (yaml: string, env: Record<string, string> = { PI_PASSWORD: 'x', AVEVA_PASSWORD: 'y' }) => {
    try {
      loadHistorianConfig(write(yaml), env);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected the file to be refused');
  };

  it('refuses a literal secret in any historian, naming where it is', () => {
    const msg = refused(TWO.replace('"${AVEVA_PASSWORD}"', 'plain-text-password'));
    expect(msg).toContain('historians.1.connection.auth.password');
    expect(msg).toContain('must come from the environment');
    expect(msg).not.toContain('plain-text-password');
  });

  it('refuses two historians of one name, a mapping to a historian not defined, a tag mapped twice', () => {
    expect(refused(TWO.replace('name: AVEVA-1', 'name: PI-SITE1'))).toMatch(/historians\.1\.name: is used twice/);
    expect(refused(TWO.replace('historian: AVEVA-1,', 'historian: NOPE,'))).toMatch(
      /tagMappings\.1\.historian: "NOPE" is not defined/,
    );
    const again = '  - { historian: AVEVA-1, tag: Baytown.tank_level, machineId: M-103, signalType: l, unit: m }\n';
    const twice = `${TWO}${again}`;
    expect(refused(twice)).toMatch(/tagMappings\.2\.tag: is mapped twice/);
    expect(refused(TWO.replace('scale: 0.001', 'scale: 0'))).toMatch(/scale: must not be 0/);
    expect(refused(TWO.replace('type: aveva-rest', 'type: osisoft'))).toMatch(/historians\.1\.type/);
  });
});
