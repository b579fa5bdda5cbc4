import t from 'tap';
import pg from 'pg';
import { activate, buildReferralTestApp, createUser, eventually } from '../referral-test-app.js';
import { newestInviteePhones } from '../../src/invites/invitee-list-sql.js';
import { assertForestAndCounts } from './graph-invariants.js';

// An activation runs under READ COMMITTED and relies on its row locks (activate_invite, migration
// 2026-12-06T00): with invitees of its own, the user takes the top of the owner's chain in share
// mode and walks the chain again once it holds it. Here the top gains an inviter (below the user)
// while the activation waits for that lock: the second walk must see the longer chain and refuse.
t.test('the chain grows above the owner while the activation waits for its top: the cycle is refused', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [user, owner, top, below] = await Promise.all([
    createUser(ctx),
    createUser(ctx),
    createUser(ctx),
    createUser(ctx),
  ]);
  t.equal((await activate(ctx.app, owner, top.invite_code)).statusCode, 200, 'the owner sits under the top');
  t.equal((await activate(ctx.app, below, user.invite_code)).statusCode, 200, 'the user has an invitee');

  const holder = new pg.Client({ connectionString: ctx.databaseUrl, application_name: 'test-row-holder' });
  await holder.connect();
  t.teardown(() => holder.end());
  await holder.query('BEGIN');
  await holder.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [top.id]);

  const pending = activate(ctx.app, user, owner.invite_code);
  await eventually(
    'the activation waits for the top row',
    async () =>
      (
        await holder.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE a.application_name = 'referral' AND l.locktype IN ('tuple', 'transactionid') AND NOT l.granted`,
        )
      ).rows[0]?.n === 1,
    10_000,
  );
  // As an activation of `below`'s code by the top would: top -> below -> user -> owner -> top.
  await holder.query(
    `UPDATE users SET invited_by_id = $2, activated_invite_code = $3, activated_at = clock_timestamp()
     WHERE id = $1`,
    [top.id, below.id, below.invite_code],
  );
  await holder.query(
    `UPDATE users u SET invited_count = invited_count + 1, invited_users = to_json(${newestInviteePhones('u.id')})
     WHERE id = $1`,
    [below.id],
  );
  await holder.query('COMMIT');

  const answer = await pending;
  t.equal(answer.statusCode, 422, answer.body);
  t.equal(answer.json().code, 'invite_cycle');
  await assertForestAndCounts(t, ctx.db);
});
