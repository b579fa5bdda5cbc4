// `pnpm test` runs against real PostgreSQL and Redis and drives a real browser: make sure they are
// there before any suite starts, starting the local stores when they are installed but stopped.
import { existsSync } from 'node:fs';
import { checkStores } from './stores.mjs';

const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const failures = await checkStores({ databaseUrl, redisUrl, startLocal: true });

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Installing it is the machine's business (README, .ci/run): a test command changes nothing outside the project.
if (!existsSync(chromium)) {
  failures.push(`The browser check needs Chromium at ${chromium}: apt-get install chromium (or set CHROMIUM_PATH).`);
}

if (failures.length > 0) {
  process.stderr.write(`The tests need PostgreSQL, Redis and Chromium.\n${failures.join('\n')}\n`);
  process.stderr.write(
    '(Tests use TEST_DATABASE_URL and TEST_REDIS_URL; each test file makes its own database and key prefix.)\n',
  );
  process.exit(1);
}
