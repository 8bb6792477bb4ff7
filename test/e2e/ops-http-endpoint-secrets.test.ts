import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IotConfigSchema } from '../../lib/config/iot.ts';
import { freePort } from '../../lib/embedded/free-port.ts';
import { configureLog } from '../../lib/log.ts';
import { startIngest, type RunningIngest } from '../../lib/telemetry/ingest.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { until } from '../helpers/until.ts';

/**
 * docs/telemetry.md: "`httpEndpoints` shows each endpoint's last success, failure, error code and counts;
 * credentials in URLs are masked". Endpoints here carry every kind of credential a sensor gateway asks for:
 * user:password in the URL, a key in the query string, a bearer token in a header; some answer, some fail (so the
 * error fields are filled), and some have no name (the name is then the URL).
 */
const PASSWORD = 'pw-Zq81-basic';
const API_KEY = 'key-Hx42-query';
const BEARER = 'tok-Rb07-bearer';
const FAILING_PASSWORD = 'pw-Kd55-failing';
const FAILING_TOKEN = 'tok-Wm63-failing';
const REFUSED_PASSWORD = 'pw-Vc19-refused';
const SECRETS = [PASSWORD, API_KEY, BEARER, FAILING_PASSWORD, FAILING_TOKEN, REFUSED_PASSWORD];

let hub: TestHub;
let ingest: RunningIngest;
let sensor: Server;
let at: string;
let closedPort: number;
let admin: string;
/** Everything the hub logs while this file runs, at every level. */
const logged: string[] = [];

const doc = () => JSON.stringify({ sensor: 'NO-SUCH-SENSOR', value: 1, ts: new Date().toISOString() });

beforeAll(async () => {
  configureLog({ level: 'trace', destination: { write: (line: string) => void logged.push(line) } });
  hub = await startTestHub();
  admin = await hub.token({ role: 'admin' });
  // A sensor gateway that answers only with the right credential, so a success shows the credential was sent.
  sensor = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const ok =
      (u.pathname === '/basic' && auth === `Basic ${Buffer.from(`hub:${PASSWORD}`).toString('base64')}`) ||
      (u.pathname === '/query' && u.searchParams.get('apikey') === API_KEY) ||
      (u.pathname === '/bearer' && auth === `Bearer ${BEARER}`);
    if (u.pathname === '/down') res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"down"}');
    else if (ok) res.writeHead(200, { 'content-type': 'application/json' }).end(doc());
    else res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"who are you"}');
  });
  await new Promise<void>((r) => sensor.listen(0, '127.0.0.1', () => r()));
  at = `127.0.0.1:${(sensor.address() as AddressInfo).port}`;
  closedPort = await freePort();
  const mapping = { sensorId: { path: 'sensor' }, values: [{ path: 'value' }], timestamp: { path: 'ts' } };
  const iot = IotConfigSchema.parse({
    http: {
      enabled: true,
      endpoints: [
        { name: 'basic', url: `http://hub:${PASSWORD}@${at}/basic`, intervalSeconds: 1, mapping },
        // No name: the URL names it.
        { url: `http://${at}/query?site=A&apikey=${API_KEY}`, intervalSeconds: 1, mapping },
        { name: 'bearer', url: `http://${at}/bearer`, headers: { Authorization: `Bearer ${BEARER}` }, mapping },
        { name: 'failing', url: `http://hub:${FAILING_PASSWORD}@${at}/down?token=${FAILING_TOKEN}`, mapping },
        { url: `http://hub:${REFUSED_PASSWORD}@127.0.0.1:${closedPort}/refused`, intervalSeconds: 1, mapping },
      ].map((e) => ({ intervalSeconds: 1, timeoutSeconds: 1, ...e })),
    },
    pipeline: { batchMaxDelayMs: 10 },
  });
  ingest = await startIngest({
    db: hub.db,
    databaseUrl: hub.databaseUrl,
    iot,
    registry: new Registry(),
    statusIntervalMs: 200,
  });
});

afterAll(async () => {
  configureLog({ level: 'silent' });
  await ingest?.stop();
  sensor?.closeAllConnections();
  await new Promise<void>((r) => (sensor ? sensor.close(() => r()) : r()));
  await hub?.close();
});

const FIELDS = `name url intervalSeconds lastSuccessAt lastFailureAt lastError lastErrorCode consecutiveFailures
  lastDurationMs readings deadLetters skippedPolls nextPollAt worker updatedAt`;

describe('httpEndpoints and credentials', () => {
  it('shows every endpoint with its credentials masked, the secrets nowhere in the answer', async () => {
    // Three answered (with their credentials), two failed: every field the query has is filled somewhere.
    const answered = (e: any) => e.lastSuccessAt !== null && e.consecutiveFailures === 0;
    const failed = (e: any) => e.lastError !== null && e.consecutiveFailures > 0;
    const body = await until(
      'every endpoint polled',
      async () => (await hub.gql(admin, `{ httpEndpoints { ${FIELDS} } }`)).body,
      (b) => b.data?.httpEndpoints?.length === 5 && b.data.httpEndpoints.filter(answered).length === 3,
    );
    const list: any[] = body.data.httpEndpoints;
    expect(list.filter(failed)).toHaveLength(2);
    const text = JSON.stringify(body);
    for (const secret of [...SECRETS, Buffer.from(`hub:${PASSWORD}`).toString('base64')]) {
      expect(text).not.toContain(secret);
    }
    // The URLs as configured, with every credential replaced by the mask (written out by hand).
    expect(list.map((e) => e.url).sort()).toEqual(
      [
        `http://***:***@${at}/basic`,
        `http://${at}/query?site=A&apikey=***`,
        `http://${at}/bearer`,
        `http://***:***@${at}/down?token=***`,
        `http://***:***@127.0.0.1:${closedPort}/refused`,
      ].sort(),
    );
    expect(list.find((e) => e.url.endsWith('/down?token=***'))).toMatchObject({
      name: 'failing',
      lastError: 'HTTP 500 Internal Server Error',
      lastErrorCode: 'UPSTREAM_UNAVAILABLE',
    });
    // An endpoint without a name is named by its URL, masked like the url field.
    expect(list.map((e) => e.name).sort()).toEqual(
      [
        'basic',
        `http://${at}/query?site=A&apikey=***`,
        'bearer',
        'failing',
        `http://***:***@127.0.0.1:${closedPort}/refused`,
      ].sort(),
    );
  });

  it("keeps the credentials out of the dead letters' topics and out of the logs", async () => {
    // The documents name a sensor the hub does not know: dead letters, with the endpoint as their topic.
    const dead = await until(
      'dead letters from the three endpoints that answer',
      async () =>
        (await hub.gql(admin, '{ deadLetters(first: 200) { nodes { source reason topic detail payloadText } } }')).body,
      (b) => new Set(b.data?.deadLetters.nodes.map((d: any) => d.topic)).size >= 3,
    );
    expect(new Set(dead.data.deadLetters.nodes.map((d: any) => d.topic))).toEqual(
      new Set([`http://***:***@${at}/basic`, `http://${at}/query?site=A&apikey=***`, `http://${at}/bearer`]),
    );
    const text = JSON.stringify(dead);
    for (const secret of SECRETS) expect(text).not.toContain(secret);

    // The log said something about these endpoints (the failing ones are reported), and never a secret.
    const lines = logged.join('');
    expect(lines).toContain('HTTP sensor endpoint failing; backing off');
    for (const secret of [...SECRETS, Buffer.from(`hub:${PASSWORD}`).toString('base64')]) {
      expect(lines).not.toContain(secret);
    }
  });
});
