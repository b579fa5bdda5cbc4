// `pnpm test` runs against real PostgreSQL and Redis: make sure they answer before any suite starts.
import { checkStores } from './stores.mjs';

const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const failures = await checkStores({ databaseUrl, redisUrl, startLocal: true });
if (failures.length > 0) {
  process.stderr.write(`The tests need PostgreSQL and Redis.\n${failures.join('\n')}\n`);
  process.stderr.write('(Tests use TEST_DATABASE_URL and TEST_REDIS_URL; each test file makes its own database and key prefix.)\n');
  process.exit(1);
}
