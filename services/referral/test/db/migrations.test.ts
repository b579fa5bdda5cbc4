import t from 'tap';
import { Migrator, sql } from 'kysely';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';

// Users who were invited before the embedded list was a column must find it filled in.
t.test('the invited_users column is filled from the invitees already there, and can be rolled back', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const before = await migrator.migrateTo('2026-11-22T01-invitees-index-include-phone');
  t.error(before.error);

  // 1: 105 invitees, some sharing a time (the id decides); 2: two invitees; 3: none.
  await sql`
    INSERT INTO users (phone, invite_code)
      VALUES ('+79000000001', 'AAAAA1'), ('+79000000002', 'AAAAA2'), ('+79000000003', 'AAAAA3');
    INSERT INTO users (phone, invite_code, invited_by_id, activated_invite_code, activated_at)
      SELECT '+7901' || lpad(g::text, 7, '0'), 'B' || lpad(g::text, 5, '0'), 1, 'AAAAA1',
        '2026-11-01T00:00:00Z'::timestamptz + (g / 2) * interval '1 second'
      FROM generate_series(1, 105) g;
    INSERT INTO users (phone, invite_code, invited_by_id, activated_invite_code, activated_at)
      VALUES ('+79020000001', 'CCCCC1', 2, 'AAAAA2', '2026-11-02T00:00:00Z'),
        ('+79020000002', 'CCCCC2', 2, 'AAAAA2', '2026-11-01T00:00:00Z');
    UPDATE users SET invited_count = 105 WHERE id = 1;
    UPDATE users SET invited_count = 2 WHERE id = 2;
  `.execute(db);
  const expected = await sql<{ phone: string }>`
    SELECT phone FROM users WHERE invited_by_id = 1 ORDER BY activated_at DESC, id DESC LIMIT 100
  `.execute(db);

  const latest = await migrator.migrateTo('2026-11-30T00-invited-users-column');
  t.error(latest.error);
  t.same(
    latest.results?.map((r) => r.migrationName),
    ['2026-11-30T00-invited-users-column'],
  );
  const rows = await sql<{
    id: string;
    invited_users: string[];
  }>`SELECT id::text, invited_users FROM users WHERE id <= 3 ORDER BY id`.execute(db);
  t.equal(rows.rows[0]?.invited_users.length, 100);
  t.same(
    rows.rows[0]?.invited_users,
    expected.rows.map((r) => r.phone),
    'the newest 100, newest first, ties by id',
  );
  t.same(rows.rows[1]?.invited_users, ['+79020000001', '+79020000002']);
  t.same(rows.rows[2]?.invited_users, [], 'no invitees, an empty list');
  const invitee = await sql<{
    invited_users: string[];
  }>`SELECT invited_users FROM users WHERE phone = '+79020000001'`.execute(db);
  t.same(invitee.rows[0]?.invited_users, [], 'invitees themselves start empty');
  const options = await sql<{
    reloptions: string[] | null;
  }>`SELECT reloptions FROM pg_class WHERE relname = 'users'`.execute(db);
  t.same(options.rows[0]?.reloptions, ['toast_tuple_target=8160'], 'a full list is stored inline and uncompressed');

  const down = await migrator.migrateDown();
  t.error(down.error);
  const columns = await sql<{
    column_name: string;
  }>`SELECT column_name FROM information_schema.columns
      WHERE table_name = 'users' AND column_name = 'invited_users'`.execute(db);
  t.equal(columns.rows.length, 0, 'rolled back, the column is gone');
  const reset = await sql<{
    reloptions: string[] | null;
  }>`SELECT reloptions FROM pg_class WHERE relname = 'users'`.execute(db);
  t.equal(reset.rows[0]?.reloptions, null, 'and the storage option too');
  t.error((await migrator.migrateToLatest()).error, 'and it applies again');
});

t.test('accounts can be blocked and deleted: a phone only on a live row, a deleted row anonymous', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
  t.teardown(() => db.destroy());
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  t.error((await migrator.migrateTo('2026-11-30T00-invited-users-column')).error);
  await sql`INSERT INTO users (phone, invite_code, first_name) VALUES ('+79000000001', 'AAAAA1', 'Anna')`.execute(db);
  const latest = await migrator.migrateTo('2026-12-05T00-account-lifecycle');
  t.error(latest.error);
  t.same(
    latest.results?.map((r) => r.migrationName),
    ['2026-12-05T00-account-lifecycle'],
  );

  const refused = async (statement: ReturnType<typeof sql>, constraint: string) => {
    const error = await statement.execute(db).then(
      () => undefined,
      (e: unknown) => e as { code?: string; constraint?: string },
    );
    t.equal(error?.code, '23514', `refused by a check: ${constraint}`);
    t.equal(error?.constraint, constraint);
  };
  await refused(sql`INSERT INTO users (phone, invite_code) VALUES (NULL, 'AAAAA2')`, 'users_phone_unless_deleted');
  await refused(sql`UPDATE users SET phone = NULL WHERE phone = '+79000000001'`, 'users_phone_unless_deleted');
  await refused(
    sql`UPDATE users SET phone = NULL, deleted_at = now() WHERE phone = '+79000000001'`,
    'users_deleted_anonymous',
  );
  await refused(sql`UPDATE users SET deleted_at = now() WHERE phone = '+79000000001'`, 'users_deleted_anonymous');
  await sql`UPDATE users SET blocked_at = now() WHERE phone = '+79000000001'`.execute(db);
  await sql`UPDATE users SET phone = NULL, first_name = NULL, deleted_at = now() WHERE invite_code = 'AAAAA1'`.execute(
    db,
  );
  await sql`INSERT INTO users (phone, invite_code) VALUES ('+79000000001', 'AAAAA2')`.execute(db);
  const tombstones = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM users WHERE phone IS NULL AND deleted_at IS NOT NULL
  `.execute(db);
  t.equal(tombstones.rows[0]?.n, 1, 'a tombstone and a new account of its phone live side by side');
  const dupe = await sql`INSERT INTO users (phone, invite_code) VALUES ('+79000000009', 'AAAAA1')`.execute(db).then(
    () => undefined,
    (e: unknown) => e as { constraint?: string },
  );
  t.equal(dupe?.constraint, 'users_invite_code_key', "the tombstone's invite code is never handed out again");

  const blockedDown = await migrator.migrateDown();
  t.ok(blockedDown.error, 'no way down while a tombstone holds no phone');
  await sql`DELETE FROM users WHERE deleted_at IS NOT NULL`.execute(db);
  const down = await migrator.migrateDown();
  t.error(down.error, 'without tombstones it rolls back');
  const columns = await sql<{ column_name: string }>`
    SELECT column_name FROM information_schema.columns
    WHERE table_name = 'users' AND column_name IN ('blocked_at', 'deleted_at')
  `.execute(db);
  t.equal(columns.rows.length, 0, 'the columns are gone');
  t.error((await migrator.migrateTo('2026-12-05T00-account-lifecycle')).error, 'and it applies again');
});
