import t from 'tap';
import pg from 'pg';
import { TestStack } from '@refstack/shared/testing';
import { STALE_INVITEE_LISTS_SQL } from '../../services/referral/src/invites/invitee-list-sql.js';

const USERS = 200;

/**
 * 200 users sign up at once, activate each other's codes in random order and refresh their tokens
 * in parallel; afterwards the database and the sessions must be exactly consistent.
 */
t.test('200 concurrent users: sign-up, crossing activations, parallel refreshes', async (t) => {
  // This test is about consistency, not speed: 200 serializable activations at once can take the
  // referral service longer than the suite's short upstream timeout on a slow machine, and a timed-out
  // answer (503, retry) to an activation that then commits is not what is being checked here.
  // Everyone comes from one address here, so its per-client budgets are raised like the send limit.
  const stack = await TestStack.create(t, {
    SEND_CODE_IP_PER_HOUR: '100000',
    VERIFY_IP_FAILED_PER_HOUR: '100000',
    OTP_MAX_SENDS_PER_HOUR: '100',
    UPSTREAM_TIMEOUT_MS: '30000',
  });
  await stack.startAll();
  const phones = Array.from({ length: USERS }, (_, i) => `+7912777${String(i).padStart(4, '0')}`);

  await Promise.all(phones.map((phone) => stack.post('/api/v1/auth/send-code', { phone })));
  await stack.waitFor(() => phones.every((p) => stack.smsCode(p) !== undefined), 30_000, 'every SMS');
  const logins = await Promise.all(
    phones.map((phone) => stack.post('/api/v1/auth/verify', { phone, code: stack.smsCode(phone) })),
  );
  t.equal(logins.filter((l) => l.status === 200).length, USERS, 'every sign-up succeeded');
  const users = logins.map(
    (l) => l.json as { user: { id: string; invite_code: string }; tokens: { access: string; refresh: string } },
  );

  // Everyone activates a random other user's code, all at once: many of these cross or close cycles.
  const answers = await Promise.all(
    users.map((user, i) => {
      const other = users[(i + 1 + Math.floor(Math.random() * (USERS - 1))) % USERS]!;
      return fetch(`${stack.url}/api/v1/profile/invite`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${user.tokens.access}`, 'content-type': 'application/json' },
        body: JSON.stringify({ invite_code: other.user.invite_code }),
      }).then(async (r) => ({ status: r.status, code: ((await r.json()) as { code?: string }).code }));
    }),
  );
  // An activation that runs out of its deadline on a loaded machine answers 503
  // service_unavailable, which must mean that it applied nothing: the last check below counts
  // exactly the 200s as relations.
  const refusedOrLate = (a: { status: number; code?: string }) =>
    (a.status === 422 && a.code === 'invite_cycle') || (a.status === 503 && a.code === 'service_unavailable');
  const unexpected = answers.filter((a) => a.status !== 200 && !refusedOrLate(a));
  const late = answers.filter((a) => a.status === 503).length;
  t.same(
    unexpected,
    [],
    `each activation succeeded, was a refused cycle, or ran out of time (${late} of ${USERS} did)`,
  );
  t.ok(answers.filter((a) => a.status === 200).length > USERS / 2, 'most activations succeeded');

  // Each user refreshes the same token twice at once: exactly one wins, the session stays whole.
  const refreshes = await Promise.all(
    users.map(async (user) => {
      const pair = await Promise.all(
        [0, 1].map(() => stack.post('/api/v1/auth/refresh', { refresh: user.tokens.refresh })),
      );
      return pair;
    }),
  );
  const winners = refreshes.map((pair) => pair.filter((r) => r.status === 200));
  t.ok(
    winners.every((w) => w.length <= 1),
    'never two winners for one refresh token',
  );
  // A loser presented a spent token: that revokes the family, so the winner's token must not work either.
  const states = await Promise.all(
    refreshes.map(async (pair) => {
      const win = pair.find((r) => r.status === 200);
      if (!win) return 'revoked';
      const next = await stack.post('/api/v1/auth/refresh', { refresh: win.json['refresh'] });
      const loserCode = pair.find((r) => r.status !== 200)?.json['code'];
      return loserCode === 'token_reused'
        ? next.status === 401
          ? 'revoked'
          : 'two-states'
        : next.status === 200
          ? 'rotated'
          : 'two-states';
    }),
  );
  t.notOk(states.includes('two-states'), 'no session is in two states');

  const db = new pg.Client({ connectionString: stack.env['DATABASE_URL'] });
  await db.connect();
  t.teardown(() => db.end());
  const cycles = await db.query<{ n: string }>(`
    WITH RECURSIVE walk(start, id, depth) AS (
      SELECT id, invited_by_id, 1 FROM users WHERE invited_by_id IS NOT NULL
      UNION ALL
      SELECT w.start, u.invited_by_id, w.depth + 1 FROM walk w JOIN users u ON u.id = w.id
      WHERE u.invited_by_id IS NOT NULL AND w.depth < 1000 AND w.id <> w.start
    )
    SELECT count(*) AS n FROM walk WHERE id = start`);
  t.equal(cycles.rows[0]?.n, '0', 'the invite graph is a forest');
  const counts = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM users u
     WHERE u.invited_count <> (SELECT count(*) FROM users i WHERE i.invited_by_id = u.id)`,
  );
  t.equal(counts.rows[0]?.n, '0', 'every invited_count equals its real count');
  const lists = await db.query<{ n: number }>(STALE_INVITEE_LISTS_SQL);
  t.equal(lists.rows[0]?.n, 0, 'every embedded invitee list is the newest 100, in index order');
  const codes = await db.query<{ users: string; codes: string }>(
    `SELECT count(*) AS users, count(DISTINCT invite_code) AS codes FROM users`,
  );
  t.same(
    codes.rows[0],
    { users: String(USERS), codes: String(USERS) },
    'every user has exactly one invite code, all distinct',
  );
  const activated = await db.query<{ n: string }>(`SELECT count(*) AS n FROM users WHERE invited_by_id IS NOT NULL`);
  t.equal(
    Number(activated.rows[0]?.n),
    answers.filter((a) => a.status === 200).length,
    'every 200 is one relation, and only those',
  );
});
