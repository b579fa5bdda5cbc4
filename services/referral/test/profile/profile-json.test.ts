import t from 'tap';
import { sql } from 'kysely';
import { Value } from 'typebox/value';
import { ProfileSchema } from '@refstack/shared/contracts';
import { requireActive } from '../../src/users/account-status.js';
import { toProfile } from '../../src/users/profile-mapper.js';
import { poolOf } from '../../src/db/database.js';
import { findById, PROFILE_BY_ID, PROFILE_JSON_BY_IDS } from '../../src/users/user-repository.js';
import { activate, as, buildReferralTestApp, createUser, watchStatement } from '../referral-test-app.js';

// GET /profile is rendered by PostgreSQL; it must be the very document the mapper would produce.
t.test('the PostgreSQL-rendered profile equals the mapped row, field for field', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const plain = await createUser(ctx);
  const named = await createUser(ctx);
  const inviter = await createUser(ctx);
  await sql`UPDATE users SET first_name = ${'Zoë "Z" \\ O\'Brien'}, last_name = ${'丁 🙂 \u2028'},
    email = ${'a.b+c@example.com'},
    created_at = '2026-03-04 05:06:07.891234+03' WHERE id = ${named.id}`.execute(ctx.db);
  const invitees = [];
  for (let i = 0; i < 103; i += 1) invitees.push(await createUser(ctx));
  for (const u of invitees) t.equal((await activate(ctx.app, u, inviter.invite_code)).statusCode, 200);
  t.equal((await activate(ctx.app, inviter, plain.invite_code)).statusCode, 200);

  for (const user of [plain, named, inviter, invitees[0]!]) {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /^application\/json; charset=utf-8/);
    const row = await findById(ctx.db, user.id);
    t.ok(row);
    t.same(res.json(), toProfile(requireActive(row)), `profile ${user.id}`);
    t.ok(Value.Check(ProfileSchema, res.json()), 'and it satisfies the Profile schema');
  }
  const popular = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(inviter) })).json() as {
    invited_users: string[];
    invited_count: number;
    activated_invite_code: string;
  };
  t.equal(popular.invited_users.length, 100, 'at most 100 embedded');
  t.same(
    popular.invited_users,
    invitees
      .slice(3)
      .reverse()
      .map((u) => u.phone),
    'the newest 100, newest first',
  );
  const page = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited?limit=100', headers: as(inviter) })
  ).json() as { items: Array<{ phone: string }> };
  t.same(
    popular.invited_users,
    page.items.map((i) => i.phone),
    'the same phones, in the same order, as the first page of invitees',
  );
  t.equal(popular.invited_count, 103);
  t.equal(popular.activated_invite_code, plain.invite_code);
  const named_ = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(named) })).json() as {
    created_at: string;
    first_name: string;
  };
  t.equal(named_.created_at, '2026-03-04T02:06:07.891Z', 'UTC, milliseconds, like Date#toISOString');
  t.equal(named_.first_name, 'Zoë "Z" \\ O\'Brien');
});

t.test('a token whose user is gone is 401, not an empty document', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  await sql`DELETE FROM users WHERE id = ${user.id}`.execute(ctx.db);
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'unauthorized');
});

// Reads that arrive together share one statement; each must still get its own user's document.
t.test('profile reads arriving together share a statement, and each gets its own answer', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const users = [];
  for (let i = 0; i < 12; i += 1) users.push(await createUser(ctx));
  t.equal((await activate(ctx.app, users[1]!, users[0]!.invite_code)).statusCode, 200);
  const gone = users[11]!;
  await sql`DELETE FROM users WHERE id = ${gone.id}`.execute(ctx.db);

  const executions = watchStatement(t, ctx.db, PROFILE_JSON_BY_IDS.name);

  // Every user once, the first three twice more: a repeated id gets its own copy.
  const readers = [...users, users[0]!, users[1]!, users[2]!, users[0]!, users[1]!, users[2]!];
  const answers = await Promise.all(
    readers.map((user) => ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })),
  );
  const statements = executions.length;
  t.ok(statements >= 1 && statements < readers.length / 2, `${readers.length} reads in ${statements} statements`);
  for (const [i, res] of answers.entries()) {
    const user = readers[i]!;
    if (user === gone) {
      t.equal(res.statusCode, 401, 'the deleted user alone is refused');
      t.equal(res.json().code, 'unauthorized');
      continue;
    }
    t.equal(res.statusCode, 200);
    const row = await findById(ctx.db, user.id);
    t.same(res.json(), toProfile(requireActive(row)), `read ${i} is user ${user.id}'s own profile`);
  }
});

// The row statement is prepared once per connection; it must survive a migration that adds a column.
t.test('the prepared profile row names every column, and survives a column added while it is prepared', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const columns = await sql<{
    column_name: string;
  }>`SELECT column_name FROM information_schema.columns WHERE table_name = 'users'`.execute(ctx.db);
  const pool = poolOf(ctx.db);
  // One connection, so the second read runs on the connection that prepared the statement.
  const client = await pool.connect();
  t.teardown(() => client.release());
  const first = (await client.query({ ...PROFILE_BY_ID, values: [user.id] })).rows[0] as Record<string, unknown>;
  t.same(Object.keys(first).sort(), columns.rows.map((c) => c.column_name).sort(), 'every column of users, no more');
  await client.query(`ALTER TABLE users ADD COLUMN later_addition text`);
  const again = (await client.query({ ...PROFILE_BY_ID, values: [user.id] })).rows[0] as Record<string, unknown>;
  t.equal(again['id'], user.id, 'the prepared statement still answers');
});
