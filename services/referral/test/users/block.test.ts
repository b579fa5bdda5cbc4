import t, { type Test } from 'tap';
import { closeRedis, connectRedis } from '@refstack/shared/platform';
import { Value } from 'typebox/value';
import { INTERNAL_USER_PATH, InternalUserSchema, internalPath } from '@refstack/shared/contracts';
import { TEST_REDIS_URL } from '@refstack/shared/testing';
import {
  activate,
  as,
  buildReferralTestApp,
  createUser,
  internal,
  nextPhone,
  signInRaw,
  type ReferralTestContext,
} from '../referral-test-app.js';

type Method = 'GET' | 'PATCH' | 'PUT' | 'POST' | 'DELETE';

function problem(t: Test, res: { statusCode: number; json(): { code?: unknown } }, status: number, code: string) {
  t.equal(res.statusCode, status, code);
  t.equal(res.json().code, code);
}

const blockedAt = async (ctx: ReferralTestContext, id: string) =>
  (await ctx.db.selectFrom('users').select('blocked_at').where('id', '=', id).executeTakeFirstOrThrow()).blocked_at;

// Blocked in the database alone, without a revocation: a token that still verifies (one this
// instance has not heard revoked yet) must not act either.
t.test('a blocked account is refused at sign-in and on every route; its invite code is not found', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, user, fresh] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', user.id).execute();

  problem(t, await signInRaw(ctx.app, { phone: user.phone }), 403, 'account_blocked');
  problem(t, await signInRaw(ctx.app, { phone: user.phone, invite_code: fresh.invite_code }), 403, 'account_blocked');

  const calls: Array<[Method, string, Record<string, unknown>?]> = [
    ['GET', '/api/v1/profile'],
    ['PATCH', '/api/v1/profile', { first_name: 'Blocked' }],
    ['PUT', '/api/v1/profile/invite', { invite_code: inviter.invite_code }],
    ['PUT', '/api/v1/profile/invite', { invite_code: fresh.invite_code }],
    ['GET', '/api/v1/profile/invited'],
    ['GET', '/api/v1/users'],
    ['GET', `/api/v1/users/${fresh.id}`],
    ['POST', `/api/v1/users/${fresh.id}/block`],
    ['GET', '/api/v1/users/current_user'],
    ['PATCH', '/api/v1/users/current_user', { first_name: 'Blocked' }],
    ['GET', '/compat/seed1/profile'],
    ['PUT', '/compat/seed1/profile/set-invite', { invite_code: inviter.invite_code }],
  ];
  for (const [method, url, payload] of calls) {
    const res = await ctx.app.inject({ method, url, headers: as(user), ...(payload ? { payload } : {}) });
    problem(t, res, 403, 'account_blocked');
  }
  const stored = await ctx.db.selectFrom('users').select('first_name').where('id', '=', user.id).executeTakeFirst();
  t.equal(stored?.first_name, null, 'no change was written');

  problem(t, await activate(ctx.app, fresh, user.invite_code), 404, 'invite_not_found');
  problem(t, await signInRaw(ctx.app, { phone: nextPhone(), invite_code: user.invite_code }), 404, 'invite_not_found');
  const card = await ctx.app.inject({ method: 'GET', url: `/api/v1/users/${user.id}`, headers: as(fresh) });
  t.equal(card.statusCode, 200, 'others still see the card');
});

t.test('admins block and unblock over the API; the tokens stop, and stay stopped after the unblock', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [admin, user, plain] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', admin.id).execute();
  const block = (who: { token: string }, id: string, method: 'POST' | 'DELETE' = 'POST') =>
    ctx.app.inject({ method, url: `/api/v1/users/${id}/block`, headers: as(who) });
  t.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })).statusCode, 200);

  problem(t, await block(plain, user.id), 403, 'forbidden');
  problem(t, await block(plain, user.id, 'DELETE'), 403, 'forbidden');
  t.equal(await blockedAt(ctx, user.id), null, 'a non-admin blocks nobody');

  const first = await block(admin, user.id);
  t.equal(first.statusCode, 204);
  t.equal(first.body, '', 'no body');
  const since = await blockedAt(ctx, user.id);
  t.ok(since, 'blocked');
  t.equal((await block(admin, user.id)).statusCode, 204, 'blocking again is fine');
  t.same(await blockedAt(ctx, user.id), since, 'and keeps the first time');

  const refused = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  problem(t, refused, 401, 'unauthorized');
  t.match(refused.json().detail, /has ended/, 'the revocation ended the token');
  problem(t, await signInRaw(ctx.app, { phone: user.phone }), 403, 'account_blocked');
  const redis = await connectRedis(TEST_REDIS_URL, 'api');
  t.teardown(() => closeRedis(redis));
  const recorded = (await redis.zrange(`${ctx.redisPrefix}:revocations`, '0', '-1')).map(
    (member) => JSON.parse(member) as { sub?: string; before?: number },
  );
  t.ok(
    recorded.length > 0 && recorded.every((r) => r.sub === user.id && typeof r.before === 'number'),
    `published in Redis for every process: ${JSON.stringify(recorded)}`,
  );

  const gone = await createUser(ctx);
  await ctx.db.updateTable('users').set({ phone: null, deleted_at: new Date() }).where('id', '=', gone.id).execute();
  for (const id of ['999999', 'abc', gone.id]) {
    problem(t, await block(admin, id), 404, 'not_found');
    problem(t, await block(admin, id, 'DELETE'), 404, 'not_found');
  }

  t.equal((await block(admin, user.id, 'DELETE')).statusCode, 204);
  t.equal((await block(admin, user.id, 'DELETE')).statusCode, 204, 'unblocking again is fine');
  t.equal(await blockedAt(ctx, user.id), null);
  const back = await signInRaw(ctx.app, { phone: user.phone });
  t.equal(back.statusCode, 200, 'signing in works again');
  problem(t, await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) }), 401, 'unauthorized');
  const after = ctx.issuer.sign({ sub: user.id, phone: user.phone, iat: Math.floor(Date.now() / 1000) + 1 });
  const fresh = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as({ token: after }) });
  t.equal(fresh.statusCode, 200, 'a token issued after the block works');
  t.equal((await activate(ctx.app, plain, user.invite_code)).statusCode, 200, 'and the code is found again');
});

// Auth refuses the refresh of a session begun at or before `revoked_before`: the block's time must
// outlive the unblock, or a session no auth instance ended would work again.
t.test('the internal user carries the latest block’s time, through the unblock', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [admin, user] = [await createUser(ctx), await createUser(ctx)];
  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', admin.id).execute();
  const block = (method: 'POST' | 'DELETE') =>
    ctx.app.inject({ method, url: `/api/v1/users/${user.id}/block`, headers: as(admin) });
  const revokedBefore = async () => {
    const res = await internal(ctx.app, 'GET', internalPath(INTERNAL_USER_PATH, user.id));
    t.ok(Value.Check(InternalUserSchema, res.json()), res.body);
    return (res.json() as { revoked_before: number | null }).revoked_before;
  };
  t.equal(await revokedBefore(), null, 'never blocked');

  const from = Math.floor(Date.now() / 1000);
  t.equal((await block('POST')).statusCode, 204);
  const first = await revokedBefore();
  t.ok(first !== null && first >= from && first <= Math.floor(Date.now() / 1000), `the block's time: ${first}`);
  const redis = await connectRedis(TEST_REDIS_URL, 'api');
  t.teardown(() => closeRedis(redis));
  const announced = (await redis.zrange(`${ctx.redisPrefix}:revocations`, '0', '-1')).map(
    (member) => JSON.parse(member) as { sub?: string; before?: number },
  );
  t.same(announced, [{ sub: user.id, before: first }], 'the time announced is the time kept');
  t.equal((await block('DELETE')).statusCode, 204);
  t.equal(await revokedBefore(), first, 'the unblock keeps it');

  // A later block moves it; an earlier time never wins.
  await ctx.db
    .updateTable('users')
    .set({ revoked_before: new Date((first ?? 0) * 1000 - 60_000) })
    .where('id', '=', user.id)
    .execute();
  t.equal((await block('POST')).statusCode, 204);
  const second = await revokedBefore();
  t.ok(second !== null && second >= (first ?? 0), `the latest block's: ${second}`);
  await ctx.db
    .updateTable('users')
    .set({ revoked_before: new Date(((second ?? 0) + 3600) * 1000) })
    .where('id', '=', user.id)
    .execute();
  t.equal((await block('POST')).statusCode, 204);
  t.equal(await revokedBefore(), (second ?? 0) + 3600, 'a block never moves it back');
});
