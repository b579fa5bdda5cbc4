import t, { type Test } from 'tap';
import pg from 'pg';
import { Migrator, sql } from 'kysely';
import { createTestDatabase, eventually } from '@refstack/shared/testing';
import { createDatabase, NO_TIMEOUTS } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';

const indexes = (db: ReturnType<typeof createDatabase>) =>
  sql<{ name: string; valid: boolean }>`
    SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname LIKE 'users_%_trgm_idx' OR c.relname LIKE 'users_%_prefix_idx' ORDER BY c.relname
  `
    .execute(db)
    .then((result) => result.rows);

// An operator builds the indexes beforehand with CREATE INDEX CONCURRENTLY (README); one such build
// that failed leaves its index invalid, which IF NOT EXISTS alone would keep, unused, for good.
t.test('the search indexes: one pre-built is kept, one left invalid is built again; it rolls back', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  t.error((await migrator.migrateTo('2026-12-07T00-revoked-before')).error);
  await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
  await sql`CREATE INDEX users_phone_trgm_idx ON users USING gin (phone gin_trgm_ops)`.execute(db);
  // As a failed concurrent build leaves it (a superuser's test database may write the catalog).
  await sql`CREATE INDEX users_first_name_prefix_idx ON users (lower(first_name) text_pattern_ops)`.execute(db);
  await sql`
    UPDATE pg_index SET indisvalid = false
    WHERE indexrelid = 'users_first_name_prefix_idx'::regclass
  `.execute(db);

  t.error((await migrator.migrateTo('2026-12-07T01-search-indexes')).error);
  t.same(
    await indexes(db),
    [
      { name: 'users_first_name_prefix_idx', valid: true },
      { name: 'users_last_name_prefix_idx', valid: true },
      { name: 'users_phone_trgm_idx', valid: true },
    ],
    'all three there and valid',
  );
  const partial = await sql<{
    def: string;
  }>`SELECT pg_get_indexdef('users_first_name_prefix_idx'::regclass) AS def`.execute(db);
  t.match(
    partial.rows[0]?.def,
    /WHERE \(first_name IS NOT NULL\)/,
    'the invalid one was built again, as the migration writes it',
  );

  t.error((await migrator.migrateDown()).error);
  t.same(await indexes(db), [], 'rolled back, the indexes are gone');
  t.error((await migrator.migrateToLatest()).error, 'and it applies again');
});

const BUILT_BEFOREHAND = [
  'CREATE INDEX CONCURRENTLY users_phone_trgm_idx ON users USING gin (phone gin_trgm_ops)',
  'CREATE INDEX CONCURRENTLY users_first_name_prefix_idx ON users (lower(first_name) text_pattern_ops) ' +
    'WHERE first_name IS NOT NULL',
  'CREATE INDEX CONCURRENTLY users_last_name_prefix_idx ON users (lower(last_name) text_pattern_ops) ' +
    'WHERE last_name IS NOT NULL',
];

/** A database just before the migration, migrated over a connection that waits 200 ms for a lock. */
async function beforeSearchIndexes(t: Test) {
  const url = await createTestDatabase(t);
  const db = createDatabase({ url, poolSize: 1, timeouts: { ...NO_TIMEOUTS, lockMs: 200 } });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  t.error((await migrator.migrateTo('2026-12-07T00-revoked-before')).error);
  const session = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    t.teardown(() => client.end());
    return client;
  };
  // The operator's own session, as they would build indexes in it (pg_trgm already there).
  const operator = await session();
  await operator.query('CREATE EXTENSION IF NOT EXISTS pg_trgm');
  return { db, migrator, session, operator };
}

t.test('with the indexes built beforehand, the migration takes no lock that holds writes', async (t) => {
  const { db, migrator, session, operator } = await beforeSearchIndexes(t);
  for (const build of BUILT_BEFOREHAND) await operator.query(build);
  // A sign-up under way: it holds the table against anything that stops writes.
  const writer = await session();
  await writer.query('BEGIN');
  await writer.query(`INSERT INTO users (phone, invite_code) VALUES ('+79990000001', 'WRITE1')`);
  t.error((await migrator.migrateTo('2026-12-07T01-search-indexes')).error, 'applied beside the open write');
  await writer.query('COMMIT');
  t.same(
    (await indexes(db)).map((index) => index.valid),
    [true, true, true],
  );
});

t.test('an index still being built concurrently is waited for, not dropped', async (t) => {
  const { db, migrator, session, operator } = await beforeSearchIndexes(t);
  // A concurrent build waits for transactions that could see the table: this one keeps it going.
  const reader = await session();
  await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await reader.query('SELECT count(*) FROM users');
  const build = operator.query(BUILT_BEFOREHAND[0] ?? '');
  await eventually('the build under way', async () => (await indexes(db)).length === 1, 20_000);
  const first = await migrator.migrateTo('2026-12-07T01-search-indexes');
  t.match(first.error, { code: '55P03', message: /still being built concurrently: users_phone_trgm_idx/ });
  t.same(await indexes(db), [{ name: 'users_phone_trgm_idx', valid: false }], 'the build was left alone');
  await reader.query('COMMIT');
  await build;
  t.error((await migrator.migrateTo('2026-12-07T01-search-indexes')).error, 'applied once the build finished');
  t.same(
    (await indexes(db)).map((index) => index.valid),
    [true, true, true],
  );
});

t.test('an invalid index while another session holds the table as a build does is waited for too', async (t) => {
  // As a build by another role looks to a role that may not see it in the progress view.
  const { db, migrator, operator } = await beforeSearchIndexes(t);
  await operator.query('CREATE INDEX users_phone_trgm_idx ON users USING gin (phone gin_trgm_ops)');
  await operator.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'users_phone_trgm_idx'::regclass`);
  await operator.query('BEGIN');
  await operator.query('LOCK TABLE users IN SHARE UPDATE EXCLUSIVE MODE');
  const first = await migrator.migrateTo('2026-12-07T01-search-indexes');
  // Not by a DROP that queued behind the lock (holding up every other statement on users meanwhile).
  t.match(first.error, { code: '55P03', message: /still being built concurrently/ });
  t.same(await indexes(db), [{ name: 'users_phone_trgm_idx', valid: false }], 'left alone');
  await operator.query('COMMIT');
  t.error((await migrator.migrateTo('2026-12-07T01-search-indexes')).error, 'then dropped and built again');
  t.same(
    (await indexes(db)).map((index) => index.valid),
    [true, true, true],
  );
});

t.test('an index of the same name in another schema is neither kept for ours nor dropped', async (t) => {
  const { db, migrator, operator } = await beforeSearchIndexes(t);
  await operator.query('CREATE SCHEMA archive');
  await operator.query('CREATE TABLE archive.users (phone text)');
  await operator.query('CREATE INDEX users_phone_trgm_idx ON archive.users USING gin (phone gin_trgm_ops)');
  t.error((await migrator.migrateTo('2026-12-07T01-search-indexes')).error);
  const phoneIndexes = await sql<{ table: string }>`
    SELECT i.indrelid::regclass::text AS table FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname = 'users_phone_trgm_idx' ORDER BY 1
  `.execute(db);
  t.same(
    phoneIndexes.rows.map((row) => row.table),
    ['archive.users', 'users'],
    'ours built on users, the archive’s kept',
  );
});
