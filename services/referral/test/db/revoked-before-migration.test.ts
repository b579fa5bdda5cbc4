import t from 'tap';
import { Migrator, sql } from 'kysely';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';

// Accounts blocked when the column arrives must keep their sessions refused after an unblock.
t.test('revoked_before: a blocked account gets its block’s time, others none; it rolls back', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  t.error((await migrator.migrateTo('2026-12-06T00-activate-invite-function')).error);
  await sql`
    INSERT INTO users (phone, invite_code, blocked_at)
      VALUES ('+79000000001', 'AAAAA1', '2026-12-01T10:00:00.750Z'), ('+79000000002', 'AAAAA2', NULL)
  `.execute(db);

  const up = await migrator.migrateTo('2026-12-07T00-revoked-before');
  t.error(up.error);
  t.same(
    up.results?.map((r) => r.migrationName),
    ['2026-12-07T00-revoked-before'],
  );
  const rows = await sql<{ phone: string; revoked_before: Date | null }>`
    SELECT phone, revoked_before FROM users ORDER BY phone
  `.execute(db);
  t.same(
    rows.rows.map((r) => r.revoked_before?.toISOString() ?? null),
    ['2026-12-01T10:00:00.000Z', null],
    'whole seconds, as auth compares them',
  );

  t.error((await migrator.migrateDown()).error);
  const columns = await sql<{ column_name: string }>`
    SELECT column_name FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'revoked_before'
  `.execute(db);
  t.equal(columns.rows.length, 0, 'rolled back, the column is gone');
  t.error((await migrator.migrateToLatest()).error, 'and it applies again');
});
