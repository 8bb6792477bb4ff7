/** What `npm start` prints once everything runs: where things are, a token, and something to try. */
export function printBanner(o: {
  url: string;
  token?: string;
  mqttUrl: string;
  /** Where embedded Postgres keeps its data; undefined: DATABASE_URL. */
  pgDataDir?: string;
  /** Simulated demo sensors publish to the broker. */
  simulate: boolean;
}): void {
  const example =
    '{ line(id: "LINE-1") { name currentWorkOrder { number product { name } } machines { name sensors { id unit } ' +
    'latestReadings { sensor { id } value ts } openAlerts { type message } } } }';
  const body = JSON.stringify({ query: example }).replace(/'/g, "'\\''");
  const live =
    'subscription { sensorReadings(filter: { lineIds: ["LINE-1"] }) ' +
    '{ value ts sensor { id } machine { name } workOrder { number } } }';
  console.log(`
  OEE data hub is running
    GraphQL:   ${o.url}
    Postgres:  ${o.pgDataDir ? `embedded, data kept in ${o.pgDataDir}/` : 'DATABASE_URL'}
    MQTT:      ${o.mqttUrl}${o.simulate ? ' (demo sensors publish to plant/<line>/<sensor>)' : ''}
${
  o.token
    ? `
  A development token (admin, valid 12 h; more with: npm run hub -- token --role viewer --lines LINE-1):
    export TOKEN=${o.token}
`
    : ''
}
  Try:
    curl -s ${o.url} -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \\
      -d '${body}'

  Live (graphql-ws on ${o.url.replace(/^http/, 'ws')}, connectionParams { authorization: "Bearer $TOKEN" }):
    ${live}

  Ctrl-C stops everything.
`);
}
