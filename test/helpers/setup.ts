import { configureLog } from '../../lib/log.ts';

// Tests are quiet unless asked (LOG_LEVEL=debug npx vitest ...); the hub's assembly does the same from its settings.
configureLog({ level: process.env.LOG_LEVEL ?? 'silent', service: 'test' });
