import t from 'tap';
import { Redis } from 'ioredis';
import type { Revocation } from '@refstack/shared/platform';
import { createTestRedisPrefix, TEST_REDIS_URL, type Teardownable } from '@refstack/shared/testing';
import type { AccessTokenCodec } from '../../src/tokens/jwt.js';
import { SessionStore } from '../../src/tokens/session-store.js';
import { tokenServiceFactory } from '../../src/tokens/token-service.js';

const identity = { sub: '7', phone: '+79608543017', roles: [] };
const origin = { device: 'MyApp/2.1', ip: '203.0.113.0/24' };

// Ending sessions signs and checks no access token.
const noTokens: AccessTokenCodec = {
  sign: () => {
    throw new Error('not used');
  },
  verify: () => Promise.reject(new Error('not used')),
};

/** Token service over a real session store, whose announcements fail while `failing` is set. */
async function serviceFor(t: Teardownable) {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const sessions = new SessionStore(redis, createTestRedisPrefix(t));
  const state = { failing: true, announced: [] as string[] };
  const tokens = tokenServiceFactory({
    sessions,
    accessTokens: noTokens,
    accessTtlSeconds: 900,
    refreshTtlSeconds: 3600,
    user: () => Promise.reject(new Error('not used')),
    revoke: async (batch: Revocation[]) => {
      if (state.failing) throw new Error('Redis went away');
      for (const revocation of batch) if ('sid' in revocation) state.announced.push(revocation.sid);
    },
    isRevoked: () => false,
  });
  return { sessions, tokens, state };
}

t.test(
  'ending sessions announces them before deleting them, so a retry after a failed announcement does',
  async (t) => {
    const { sessions, tokens, state } = await serviceFor(t);
    const lost = await sessions.create(identity, 3600, origin);
    await t.rejects(tokens.endSessions(identity.sub, { only: lost.sid }), /went away/);
    t.ok(await sessions.isLive(lost.sid, identity.sub), 'still there after the failed announcement');
    state.failing = false;
    t.equal(await tokens.endSessions(identity.sub, { only: lost.sid }), 1, 'the retry ends it');
    t.same(state.announced, [lost.sid], 'and announces it');
    t.notOk(await sessions.isLive(lost.sid, identity.sub));

    const kept = await sessions.create(identity, 3600, origin);
    const others = [await sessions.create(identity, 3600, origin), await sessions.create(identity, 3600, origin)];
    state.failing = true;
    await t.rejects(tokens.endSessions(identity.sub, { except: kept.sid }), /went away/);
    t.equal((await sessions.list(identity.sub)).length, 3, 'every session is still listed');
    state.failing = false;
    state.announced = [];
    t.equal(await tokens.endSessions(identity.sub, { except: kept.sid }), 2, 'the retry ends them');
    t.same(state.announced.sort(), others.map((s) => s.sid).sort(), 'and announces them');
    t.same(
      (await sessions.list(identity.sub)).map((s) => s.id),
      [kept.sid],
    );
  },
);

t.test('a logout whose announcement failed can be retried with the same refresh token', async (t) => {
  const { sessions, tokens, state } = await serviceFor(t);
  const session = await sessions.create(identity, 3600, origin);
  await t.rejects(tokens.logout(session.refresh), /went away/);
  t.ok(await sessions.isLive(session.sid, identity.sub), 'the session is still there');
  state.failing = false;
  await tokens.logout(session.refresh);
  t.same(state.announced, [session.sid], 'announced on the retry');
  t.notOk(await sessions.isLive(session.sid, identity.sub), 'and ended');
  t.same(await sessions.list(identity.sub), [], 'and gone from the list');
  await t.rejects(tokens.logout(session.refresh), { code: 'token_invalid' }, 'a third time: not valid');
});

// Reuse is theft's sign: the session it ends must be announced, or the thief's access tokens keep
// working at referral until they expire.
t.test('a reuse whose announcement fails is announced by the next token of the session presented', async (t) => {
  const { sessions, tokens, state } = await serviceFor(t);
  const { sid, refresh: first } = await sessions.create(identity, 3600, origin);
  const rotated = await sessions.rotate(first);
  if (rotated.result !== 'ok') throw new Error('rotation failed');
  await t.rejects(tokens.logout(first), /went away/, 'the announcement failed');
  t.notOk(await sessions.isLive(sid, identity.sub), 'the session is ended all the same');
  t.same(await sessions.list(identity.sub), [], 'and no longer listed');
  state.failing = false;
  await t.rejects(tokens.logout(rotated.refresh), { code: 'token_invalid' }, "the thief's token is refused");
  t.same(state.announced, [sid], 'and the session announced now');
  t.same(await sessions.identify(rotated.refresh), { result: 'invalid' }, 'then it is deleted');
});
