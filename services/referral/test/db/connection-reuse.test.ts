import t from 'tap';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase, NO_TIMEOUTS } from '../../src/db/database.js';
import { activate, buildReferralTestApp, createUser, eventually } from '../referral-test-app.js';
import { lockObserver } from '../advisory-locks.js';

// node-postgres' query_timeout answers the caller but leaves the statement running on the server.
// These set it alone, without the server-side timeouts that would otherwise end the statement first.
const CLIENT_SIDE_ONLY = { ...NO_TIMEOUTS, queryMs: 500 };

t.test('a connection whose query timed out on the client side is destroyed, not reused', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 1, timeouts: CLIENT_SIDE_ONLY });
  t.teardown(() => db.destroy());
  const pid = async () => (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]?.pid;
  const before = await pid();
  await t.rejects(sql`SELECT pg_sleep(10)`.execute(db), { message: /Query read timeout/ });
  const after = await pid();
  t.ok(
    before !== undefined && after !== undefined && before !== after,
    `the next query runs on a new connection (${before} then ${after})`,
  );
});

// The inviter's row is locked elsewhere, so the activation's statement after its advisory lock
// waits, and the client gives up on it first. The session still holds the advisory lock then: the
// connection must not go back to the pool, where it would keep the lock for as long as it lives.
t.test('an activation whose statement timed out on the client side leaves no advisory lock behind', async (t) => {
  const ctx = await buildReferralTestApp(t, {}, { timeouts: CLIENT_SIDE_ONLY });
  const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
  const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);
  const rowHolder = new pg.Client({ connectionString: ctx.databaseUrl, application_name: 'test-row-holder' });
  await rowHolder.connect();
  t.teardown(() => rowHolder.end());
  await rowHolder.query('BEGIN');
  await rowHolder.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [inviter.id]);

  const refused = await activate(ctx.app, user, inviter.invite_code);
  t.equal(refused.statusCode, 503, refused.body);
  await rowHolder.query('COMMIT');
  // The abandoned session now gets its row lock, finds its client gone and ends, locks and all.
  await eventually(
    'no service connection holds an advisory lock',
    async () => (await serviceAdvisoryLocks()).length === 0,
    15_000,
  );
  const accepted = await activate(ctx.app, user, inviter.invite_code);
  t.equal(accepted.statusCode, 200, accepted.body);
  t.same(await serviceAdvisoryLocks(), [], 'nor after the next activation');
  const row = await ctx.db
    .selectFrom('users')
    .select('invited_count')
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(row.invited_count, 1, 'counted once');
});
