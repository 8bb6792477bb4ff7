/**
 * The hub's one command; app/main.ts has the roles.
 *
 *   tsx bin/hub.ts all | gateway | production | historian | iot | quality | ingest | migrate
 *   tsx bin/hub.ts token --role engineer --sub alice [--lines LINE-1,LINE-2] [--sites SITE-1] [--ttl 12h]
 */
import { main } from '../app/main.ts';
import { ConfigError } from '../lib/config/load.ts';

main(process.argv.slice(2), process.env).catch((err) => {
  // A configuration problem is one line that says what to fix; anything else is a bug worth its stack.
  if (err instanceof ConfigError) console.error(`configuration error: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
