import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { Revocations } from '@refstack/shared/platform';
import { eventually, LogCapture, testConfig, type Teardownable } from '@refstack/shared/testing';
import { buildApp } from '../../src/app.js';
import { SessionStore } from '../../src/tokens/session-store.js';
import { buildAuthTestApp, INTERNAL_TOKEN, PHONE, signIn, type AuthTestContext } from '../auth-test-app.js';

// An operator's block that no auth instance heard announced: auth was down (a deploy, a restart)
// or its subscription was reconnecting when referral published it.

const ACCESS_TTL = 900;

/** Another auth instance on the same Redis keys, clock and referral: auth coming back. */
async function startAuth(t: Teardownable, ctx: AuthTestContext): Promise<FastifyInstance> {
  const config = testConfig({
    REDIS_KEY_PREFIX: ctx.prefix,
    REFERRAL_URL: ctx.referral.url,
    INTERNAL_TOKEN,
    ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL),
  });
  const app = await buildApp(config, {
    redis: ctx.redis,
    logStream: new LogCapture(),
    now: () => ctx.clock.now,
    sms: ctx.outbox,
  });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

/** What referral does on a block while no auth instance listens: the row, then the announcement. */
async function blockUnheard(ctx: AuthTestContext, sub: string): Promise<number> {
  await ctx.app.close();
  const before = Math.floor(ctx.clock.now / 1000);
  ctx.referral.blocked.add(sub);
  ctx.referral.revokedBefore.set(sub, before);
  const referral = new Revocations(ctx.redis, ctx.prefix, {
    accessTtlSeconds: ACCESS_TTL,
    resyncMs: 0,
    now: () => ctx.clock.now,
  });
  await referral.publish([{ sub, before }]);
  return before;
}

const refresh = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh: token } });

const sessionKey = (ctx: AuthTestContext, refreshToken: string) =>
  `${ctx.prefix}:session:{${refreshToken.split('.')[0] ?? ''}}`;

t.test('a refresh token from before a block auth never heard of stays refused after the unblock', async (t) => {
  const ctx = await buildAuthTestApp(t, { ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL) });
  const { user, tokens } = await signIn(ctx);
  await blockUnheard(ctx, user.id);
  // Down for longer than access tokens live: the announcement's entry is gone when auth is back.
  ctx.clock.advance(ACCESS_TTL + 60);
  ctx.referral.blocked.delete(user.id);
  const app = await startAuth(t, ctx);
  t.same(await ctx.redis.zrangebyscore(`${ctx.prefix}:revocations`, ctx.clock.now, '+inf'), [], 'nothing to replay');

  const refused = await refresh(app, tokens.refresh);
  t.equal(refused.statusCode, 401, refused.body);
  t.equal(refused.json().code, 'token_invalid');
  t.equal(await ctx.redis.exists(sessionKey(ctx, tokens.refresh)), 0, 'the session is ended, not just refused');
  t.equal((await refresh(app, tokens.refresh)).json().code, 'token_invalid', 'and stays so');

  // The unblocked user signs in again: that session is after the block and works.
  await app.inject({ method: 'POST', url: '/api/v1/auth/send-code', payload: { phone: PHONE } });
  const verified = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/verify',
    payload: { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) },
  });
  t.equal(verified.statusCode, 200, verified.body);
  const fresh = await refresh(app, (verified.json() as { tokens: { refresh: string } }).tokens.refresh);
  t.equal(fresh.statusCode, 200, 'a session begun after the block refreshes');
});

t.test('auth back before the entry expires ends the sessions the block covers, not later ones', async (t) => {
  const ctx = await buildAuthTestApp(t, { ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL) });
  const { user, tokens } = await signIn(ctx);
  await blockUnheard(ctx, user.id);
  ctx.clock.advance(60);
  ctx.referral.blocked.delete(user.id);
  // Begun after the block (the unblocked user on another instance): the replay must leave it.
  const later = await new SessionStore(ctx.redis, ctx.prefix, () => ctx.clock.now).create(
    { sub: user.id, phone: PHONE, roles: [] },
    3600,
    { device: 'MyApp 2 on iOS', ip: '203.0.113.0/24' },
  );

  await startAuth(t, ctx);
  await eventually(
    'the blocked session to end without being presented',
    async () => (await ctx.redis.exists(sessionKey(ctx, tokens.refresh))) === 0,
    5000,
    20,
  );
  t.equal(await ctx.redis.exists(sessionKey(ctx, later.refresh)), 1, 'the session begun after the block lives');
  t.same(
    await ctx.redis.zrange(`${ctx.prefix}:user-sessions:{${user.id}}`, '0', '-1'),
    [later.sid],
    'and is the only one its user has',
  );
});
