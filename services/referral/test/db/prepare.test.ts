import t from 'tap';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { StoreUnreachableError } from '@refstack/shared/platform';
import { TEST_POSTGRES_URL, UNREACHABLE_POSTGRES_URL } from '@refstack/shared/testing';
import { migrations } from '../../src/db/migrations/index.js';
import { prepareDatabase } from '../../src/db/prepare.js';

t.test('start-up creates a missing database in development and migrates it once', async (t) => {
  const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  t.teardown(async () => {
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  });

  const first = await prepareDatabase(url.toString(), { createIfMissing: true });
  t.equal(first.created, true);
  t.same(
    first.results.map((r) => r.status),
    Object.keys(migrations).map(() => 'Success'),
    'every migration, once',
  );
  const again = await prepareDatabase(url.toString(), { createIfMissing: true });
  t.equal(again.created, false);
  t.same(again.results, [], 'nothing pending the second time');
});

t.test('an unreachable server becomes a StoreUnreachableError naming the URL', async (t) => {
  const error = await prepareDatabase(UNREACHABLE_POSTGRES_URL, { createIfMissing: true }).catch((e: unknown) => e);
  t.ok(error instanceof StoreUnreachableError);
  t.match((error as Error).message, 'postgres://postgres@127.0.0.1:1/nowhere');
});
