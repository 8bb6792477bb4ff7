import { type ErpConfig, loadErpConfig } from './erp.ts';
import { type HistorianFile, HistorianFileSchema, loadHistorianConfig } from './historian.ts';
import { type HubConfig, HubConfigSchema, loadHubConfig, SUBGRAPHS } from './hub.ts';
import { type IotConfig, IotConfigSchema, loadIotConfig } from './iot.ts';
import { ConfigError } from './load.ts';
import { loadMesConfig, type MesConfig } from './mes.ts';
import { z } from 'zod';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Everything a hub process is configured with, read once at start (files and environment) and frozen: the
 * assembly passes it down, and nothing below it reads the environment or a file of its own.
 */
export interface Settings {
  /** The config directory the files came from (HUB_CONFIG_DIR); undefined: built-in defaults only. */
  readonly configDir: string | undefined;
  readonly hub: HubConfig;
  readonly iot: IotConfig;
  /** Absent when mes.yml is missing or switched off. */
  readonly mes: MesConfig | undefined;
  readonly erp: ErpConfig | undefined;
  /** historian.yml: the historians and the tag mappings onto machines (none without the file). */
  readonly historian: HistorianFile;
  /** LOG_LEVEL: pino's level names, or silent. */
  readonly logLevel: string;
  /** PORT, as most platforms set it: the port of the one service this process runs (the gateway for `all`). */
  readonly port: number | undefined;
}

/**
 * Reads hub.yml, iot.yml, mes.yml, erp.yml and historian.yml from HUB_CONFIG_DIR (each optional), with the
 * environment filling what the files leave out, so `DATABASE_URL=... npm start` works without a config directory;
 * HUB_DATA_DIR and HUB_DEMO_SEED apply with or without one.
 */
export function loadSettings(env: Env): Settings {
  const dir = env.HUB_CONFIG_DIR || undefined;
  const e = env as NodeJS.ProcessEnv;
  const hub = loadHubConfig(e, dir);
  return settingsOf({
    configDir: dir,
    hub: withEnvironment(hub, env, dir),
    iot: loadIotConfig(dir, e),
    mes: loadMesConfig(dir, e),
    erp: loadErpConfig(dir, e),
    historian: loadHistorianConfig(dir, e),
    logLevel: env.LOG_LEVEL || 'info',
    port: portOf(env.PORT),
  });
}

/**
 * Settings from values instead of files (tests, benchmarks): what is left out gets the files' defaults. The
 * result is frozen like loadSettings'.
 */
export function settingsOf(s: {
  configDir?: string;
  hub?: HubConfig;
  iot?: IotConfig;
  mes?: MesConfig;
  erp?: ErpConfig;
  historian?: HistorianFile;
  logLevel?: string;
  port?: number;
}): Settings {
  // A copy: zod hands out its default objects themselves, which must not be frozen under the next parse.
  return deepFreeze(
    structuredClone({
      configDir: s.configDir,
      hub: s.hub ?? HubConfigSchema.parse({}),
      iot: s.iot ?? IotConfigSchema.parse({}),
      mes: s.mes,
      erp: s.erp,
      historian: s.historian ?? HistorianFileSchema.parse({}),
      logLevel: s.logLevel ?? 'info',
      port: s.port,
    }),
  );
}

/** A copy with the given store and broker (the embedded ones `npm start` brings up). */
export function withServices(s: Settings, services: { databaseUrl?: string; mqttUrl?: string }): Settings {
  const hub = structuredClone(s.hub) as HubConfig;
  if (services.databaseUrl) hub.database.url = services.databaseUrl;
  if (services.mqttUrl) hub.mqtt.url = services.mqttUrl;
  return settingsOf({ ...s, hub });
}

/** The environment variables that stand for hub.yml keys, whether or not there is a hub.yml. */
function withEnvironment(loaded: HubConfig, env: Env, dir: string | undefined): HubConfig {
  const hub = structuredClone(loaded) as HubConfig;
  const file = dir ? `${dir}/hub.yml` : 'environment';
  if (env.HUB_DATA_DIR) hub.dataDir = env.HUB_DATA_DIR;
  if (env.HUB_DEMO_SEED) {
    // The words hub.yml's `seed: ${HUB_DEMO_SEED}` accepts (zod's stringbool: true/false, 1/0, yes/no, on/off...).
    const v = z.stringbool().safeParse(env.HUB_DEMO_SEED);
    if (!v.success)
      throw new ConfigError('environment', 'HUB_DEMO_SEED', `"${env.HUB_DEMO_SEED}" is not true or false`);
    hub.demo.seed = v.data;
  }
  // Subgraph URLs for a gateway whose subgraphs run as their own processes (docker-compose.yml).
  for (const name of SUBGRAPHS) {
    const url = env[`HUB_${name.toUpperCase()}_URL`];
    if (url && !hub.gateway.subgraphUrls[name]) {
      const parsed = HubConfigSchema.shape.gateway.safeParse({ subgraphUrls: { [name]: url } });
      if (!parsed.success) throw new ConfigError(file, `HUB_${name.toUpperCase()}_URL`, `"${url}" is not a URL`);
      hub.gateway.subgraphUrls[name] = url;
    }
  }
  return hub;
}

function portOf(p: string | undefined): number | undefined {
  if (!p) return undefined;
  const n = Number(p);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError('environment', 'PORT', `"${p}" is not a port number`);
  return n;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
