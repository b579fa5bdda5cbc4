import t, { type Test } from 'tap';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { Migrator } from 'kysely';
import { StoreUnreachableError } from '@refstack/shared/platform';
import { createTestDatabase, eventually, TEST_POSTGRES_URL, UNREACHABLE_POSTGRES_URL } from '@refstack/shared/testing';
import { createDatabase, SERVICE_TIMEOUTS } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';
import { MIGRATION_PATIENCE, prepareDatabase } from '../../src/db/prepare.js';

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

/** A session of the test's own on the database; ended at teardown. */
async function session(t: Test, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.teardown(() => client.end());
  return client;
}

/**
 * A database behind its last migrations (which alter users and index it), and a long transaction
 * that read users (a dump does): the first of them, an ALTER, must wait for it.
 */
async function heldBehindLastMigration(t: Test): Promise<{ url: string; holder: pg.Client }> {
  const url = await createTestDatabase(t);
  const db = createDatabase({ url, poolSize: 1 });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  t.error((await migrator.migrateTo('2026-12-06T00-activate-invite-function')).error);
  const holder = await session(t, url);
  await holder.query('BEGIN');
  await holder.query('SELECT count(*) FROM users');
  return { url, holder };
}

t.test('a migration that cannot get its table gives way, so reads go on, and runs once it can', async (t) => {
  const { url, holder } = await heldBehindLastMigration(t);

  const waits: string[] = [];
  const migrating = prepareDatabase(url, {
    createIfMissing: false,
    patience: { lockMs: 200, giveUpAfterMs: 120_000 },
    onWait: (message) => waits.push(message),
  });
  await eventually('the migration gives way', () => waits.length > 0, 60_000);
  // An ALTER waiting for good would hold up every later statement on the table, this one too; one
  // that waits less than the service's statements wait for a lock only delays them.
  t.ok(MIGRATION_PATIENCE.lockMs < SERVICE_TIMEOUTS.lockMs, 'migrations give way before service statements would');
  const reader = await session(t, url);
  await reader.query(`SET lock_timeout = ${SERVICE_TIMEOUTS.lockMs}`);
  const read = await reader.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
  t.equal(read.rows[0]?.n, 0, 'a read of the table answers while the long transaction lasts');

  await holder.query('COMMIT');
  const { results } = await migrating;
  t.same(
    results.map((r) => [r.migrationName, r.status]),
    [
      ['2026-12-07T00-revoked-before', 'Success'],
      ['2026-12-07T01-search-indexes', 'Success'],
      ['2026-12-07T02-activation-time-bounds', 'Success'],
    ],
    'and the migrations ran once they could',
  );
  t.match(waits[0], /waited 200 ms for a lock another session holds; rolled back, trying again in about 1 s/);
});

t.test('migrations that give up on a lock say so, not that the server is unreachable', async (t) => {
  const { url, holder } = await heldBehindLastMigration(t);
  const error = await prepareDatabase(url, {
    createIfMissing: false,
    patience: { lockMs: 100, giveUpAfterMs: 0 },
  }).catch((e: unknown) => e);
  t.notOk(error instanceof StoreUnreachableError, 'not advice to start a database that is running');
  t.match((error as Error).message, /lock timeout/);
  await holder.query('ROLLBACK');
});
