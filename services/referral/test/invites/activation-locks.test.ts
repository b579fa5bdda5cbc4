import t from 'tap';
import { sql } from 'kysely';
import pg from 'pg';
import { testConfig } from '@refstack/shared/testing';
import { activationDeadlines } from '../../src/invites/invite-service.js';
import {
  activate,
  as,
  buildReferralTestApp,
  createUser,
  eventually,
  type ReferralTestContext,
} from '../referral-test-app.js';
import { holdInviterLocks, lockObserver } from '../advisory-locks.js';

// What the service guarantees: an answer by its activation deadline; the rest is a loaded machine's
// scheduling slack, not a promise.
const ACTIVATION_DEADLINE_MS = activationDeadlines(testConfig()).activateMs;
const BOUND_MS = ACTIVATION_DEADLINE_MS + 1000;

const statuses = (answers: Array<{ statusCode: number }>) =>
  answers.reduce<Record<string, number>>(
    (count, r) => ({ ...count, [r.statusCode]: (count[r.statusCode] ?? 0) + 1 }),
    {},
  );

const readProfile = (ctx: ReferralTestContext, user: { token: string }) =>
  ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });

t.test('the pool connections carry server-side limits on statements, lock waits and idle transactions', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const { rows } = await sql<{ statement: string; lock: string; idle: string }>`
    SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock,
           current_setting('idle_in_transaction_session_timeout') AS idle
  `.execute(ctx.db);
  t.notSame(rows[0], { statement: '0', lock: '0', idle: '0' }, JSON.stringify(rows[0]));
  for (const value of Object.values(rows[0] ?? {})) t.not(value, '0', `set (${value})`);
});

t.test(
  'an inviter lock held elsewhere past the timeout: 503 in time, nothing left locked, then the activation goes through',
  async (t) => {
    const ctx = await buildReferralTestApp(t);
    const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
    const holder = await holdInviterLocks(t, ctx.databaseUrl, [inviter.id]);
    const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);

    const started = Date.now();
    const pending = activate(ctx.app, user, inviter.invite_code);
    await eventually(
      'the activation queues on the inviter lock',
      async () => (await serviceAdvisoryLocks()).some((l) => !l.granted),
      10_000,
    );
    const refused = await pending;
    const took = Date.now() - started;
    t.equal(refused.statusCode, 503, refused.body);
    t.equal(refused.json().code, 'service_unavailable');
    t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After');
    t.ok(took <= BOUND_MS, `answered within ${BOUND_MS} ms (${took} ms)`);
    t.same(await serviceAdvisoryLocks(), [], 'no service connection holds or still waits for an advisory lock');

    await holder.release();
    const accepted = await activate(ctx.app, user, inviter.invite_code);
    t.equal(accepted.statusCode, 200, accepted.body);
    t.same(await serviceAdvisoryLocks(), [], 'none after the activation either');
    const row = await ctx.db
      .selectFrom('users')
      .select('invited_count')
      .where('id', '=', inviter.id)
      .executeTakeFirstOrThrow();
    t.equal(row.invited_count, 1, 'counted once');
  },
);

// Waits one after another: the inviter's advisory lock, freed late, then the inviter's row, held
// past the deadline. The shortest deadline (1 s) starts the statement with less than the
// connection's own lock bound left, so each wait alone may take all of it; together they must not.
t.test('an activation whose lock waits add up past its deadline answers 503 by it, nothing applied', async (t) => {
  const env = { UPSTREAM_TIMEOUT_MS: '6000' };
  const deadlineMs = activationDeadlines(testConfig(env)).activateMs;
  t.equal(deadlineMs, 1000, 'the shortest deadline');
  const ctx = await buildReferralTestApp(t, env);
  const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
  const advisory = await holdInviterLocks(t, ctx.databaseUrl, [inviter.id]);
  const rowHolder = new pg.Client({ connectionString: ctx.databaseUrl, application_name: 'test-row-holder' });
  await rowHolder.connect();
  t.teardown(() => rowHolder.end());
  await rowHolder.query('BEGIN');
  await rowHolder.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [inviter.id]);
  const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);

  const started = Date.now();
  const pending = activate(ctx.app, user, inviter.invite_code);
  await eventually(
    'the activation queues on the inviter lock',
    async () => (await serviceAdvisoryLocks()).some((l) => !l.granted),
    10_000,
  );
  // The advisory lock goes at 0.6 s and the row at 1.4 s: a row wait given the statement's whole
  // bound again would get the row and answer 200 that late.
  const freeAdvisory = setTimeout(() => void advisory.release(), Math.max(0, started + 600 - Date.now()));
  const freeRow = setTimeout(
    () => void rowHolder.query('ROLLBACK').catch(() => undefined),
    Math.max(0, started + 1400 - Date.now()),
  );
  const answer = await pending;
  const took = Date.now() - started;
  clearTimeout(freeAdvisory);
  clearTimeout(freeRow);
  t.equal(answer.statusCode, 503, answer.body);
  t.ok(took <= deadlineMs + 1000, `answered within ${deadlineMs + 1000} ms (${took} ms)`);
  const row = await ctx.db
    .selectFrom('users')
    .select(['invited_count', 'invited_users'])
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.same(row, { invited_count: 0, invited_users: [] }, 'nothing applied');
});

// Another instance's activation of the same inviter holds its lock throughout: a repeat that queued
// on it would park a pooled connection for as long as it waits.
t.test('200 parallel repeats of an activation leave every concurrent profile read of other users 200', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  const readers = await Promise.all(Array.from({ length: 20 }, () => createUser(ctx)));
  const holder = await holdInviterLocks(t, ctx.databaseUrl, [inviter.id]);
  const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);

  const repeats = Promise.all(Array.from({ length: 200 }, () => activate(ctx.app, user, inviter.invite_code)));
  // Reads arrive in rounds while the repeats are in flight, not in one batch ahead of them.
  const read: Array<{ statusCode: number }> = [];
  for (let round = 0; round < 5; round += 1)
    read.push(...(await Promise.all(readers.map((reader) => readProfile(ctx, reader)))));
  const repeated = await repeats;
  t.same(statuses(read), { 200: 100 }, 'every read 200');
  t.same(statuses(repeated), { 200: 200 }, 'every repeat 200, answered without the lock');
  t.same(await serviceAdvisoryLocks(), [], 'no repeat touched the lock');
  await holder.release();
});

t.test("refusals are answered without the lock: another code, an unknown code, one's own code", async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, other, user] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  const fresh = await createUser(ctx);
  await holdInviterLocks(t, ctx.databaseUrl, [inviter.id, other.id, user.id, fresh.id]);
  const started = Date.now();
  const cases: Array<[{ token: string }, string, number, string]> = [
    [user, other.invite_code, 409, 'invite_already_activated'],
    [fresh, 'ZZZZZZ', 404, 'invite_not_found'],
    [fresh, fresh.invite_code, 422, 'invite_self'],
  ];
  for (const [who, code, status, problem] of cases) {
    const res = await activate(ctx.app, who, code);
    t.equal(res.statusCode, status, problem);
    t.equal(res.json().code, problem);
  }
  t.ok(Date.now() - started < ACTIVATION_DEADLINE_MS, 'none of them waited for a lock');
});

// More activations than the pool could serve one lock timeout after another before the deadline.
t.test(
  'activations waiting on held inviter locks occupy at most half the pool, give up by the deadline; reads go on',
  async (t) => {
    const ctx = await buildReferralTestApp(t);
    const inviters = await Promise.all(Array.from({ length: 30 }, () => createUser(ctx)));
    const users = await Promise.all(Array.from({ length: 30 }, () => createUser(ctx)));
    const readers = await Promise.all(Array.from({ length: 10 }, () => createUser(ctx)));
    const holder = await holdInviterLocks(
      t,
      ctx.databaseUrl,
      inviters.map((i) => i.id),
    );
    const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);

    const started = Date.now();
    const pending = Promise.all(
      users.map(async (u, n) => {
        const res = await activate(ctx.app, u, inviters[n]?.invite_code ?? '');
        return { statusCode: res.statusCode, took: Date.now() - started };
      }),
    );
    await eventually(
      'activations queue on the inviter locks',
      async () => (await serviceAdvisoryLocks()).length > 0,
      10_000,
    );
    let mostWaiting = 0;
    const reads: Array<{ statusCode: number }> = [];
    // Reads keep arriving while the activations wait; each round also counts the waiters.
    for (let round = 0; round < 10; round += 1) {
      mostWaiting = Math.max(mostWaiting, (await serviceAdvisoryLocks()).length);
      reads.push(...(await Promise.all(readers.map((reader) => readProfile(ctx, reader)))));
    }
    t.ok(mostWaiting <= 5, `at most half the pool of 10 waits on inviter locks (${mostWaiting})`);
    t.same(statuses(reads), { 200: 100 }, 'every read 200');
    const answers = await pending;
    t.same(statuses(answers), { 503: 30 }, 'the activations gave up');
    const slowest = Math.max(...answers.map((a) => a.took));
    t.ok(slowest <= BOUND_MS, `each within ${BOUND_MS} ms, the slowest in ${slowest} ms`);
    await holder.release();
  },
);
