import t from 'tap';
import { Migrator, sql } from 'kysely';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase } from '../../src/db/database.js';
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
