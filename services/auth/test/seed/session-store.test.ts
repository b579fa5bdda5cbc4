import t from 'tap';
import { Redis } from 'ioredis';
import { createTestRedisPrefix, TEST_REDIS_URL, type Teardownable } from '@refstack/shared/testing';
import { INDEX_GRACE_MS, SessionStore } from '../../src/tokens/session-store.js';

const identity = { sub: '7', phone: '+79608543017', roles: ['admin'] };
const origin = { device: 'Chrome 120 on Android 14', ip: '203.0.113.0/24' };

async function storeFor(t: Teardownable) {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const store = new SessionStore(redis, prefix);
  /** A new session's first refresh token. */
  const create = async () => (await store.create(identity, 100, origin)).refresh;
  const keyOf = (token: string) => `${prefix}:session:{${token.split('.')[0] ?? ''}}`;
  return { redis, store, keyOf, create, prefix };
}

t.test('identify answers the current token again and again and changes nothing but its last use', async (t) => {
  const { redis, store, keyOf, create } = await storeFor(t);
  const token = await create();
  const { last_used: _, ...before } = await redis.hgetall(keyOf(token));
  const ttlBefore = await redis.pttl(keyOf(token));
  for (let i = 0; i < 3; i++)
    t.match(await store.identify(token), { result: 'ok', state: { identity } }, `call ${i + 1}`);
  const { last_used: __, ...after } = await redis.hgetall(keyOf(token));
  t.same(after, before, 'the session hash is untouched but for its last use');
  t.ok((await redis.pttl(keyOf(token))) <= ttlBefore, 'the absolute expiry is not extended');
  t.equal(await redis.exists(`${keyOf(token)}:spent-at`), 0, 'nothing was spent');
  t.equal((await store.rotate(token)).result, 'ok', 'the token is still the current one for rotation');
});

t.test('identify with a spent token is reuse and revokes the family', async (t) => {
  const { redis, store, keyOf, create } = await storeFor(t);
  const first = await create();
  const rotated = await store.rotate(first);
  if (rotated.result !== 'ok') throw new Error('rotation failed');
  t.match(await store.identify(first), { result: 'reused', sub: identity.sub });
  const sid = first.split('.')[0] ?? '';
  t.notOk(await store.isLive(sid, identity.sub), 'the session ended');
  // Until its announcement is made and it is deleted, every token of it is reuse again.
  t.match(await store.identify(rotated.refresh), { result: 'reused' }, 'the newest token died with it');
  t.match(await store.rotate(rotated.refresh), { result: 'reused' });
  t.same(await store.identify(`${sid}.${'A'.repeat(43)}`), { result: 'invalid' }, 'a guess is no token of it');
  await store.forgetReused(sid, identity.sub);
  t.equal(await redis.exists(keyOf(first), `${keyOf(first)}:spent-at`), 0, 'the session and its spent record are gone');
  t.same(await store.identify(rotated.refresh), { result: 'invalid' });
  t.same(await store.rotate(rotated.refresh), { result: 'invalid' });
});

t.test('identify refuses revoked, unknown, foreign and malformed tokens without touching the session', async (t) => {
  const { store, create } = await storeFor(t);
  const revoked = await create();
  t.match(await store.revoke(revoked), { result: 'ok', sub: identity.sub });
  t.same(await store.identify(revoked), { result: 'invalid' }, 'revoked');

  const live = await create();
  const [sessionId] = live.split('.');
  // Same session id, another secret: a guess, not a spent token, so the session lives on.
  t.same(await store.identify(`${sessionId}.${'A'.repeat(43)}`), { result: 'invalid' }, 'guessed secret');
  t.match(await store.identify(live), { result: 'ok', state: { identity } }, 'the guess did not revoke the session');
  for (const garbage of ['', 'garbage', `${'a'.repeat(22)}.${'b'.repeat(43)}`, `${live}x`]) {
    t.same(await store.identify(garbage), { result: 'invalid' }, JSON.stringify(garbage));
  }
});

t.test('identify ends with the absolute lifetime', async (t) => {
  const { redis, store, keyOf, create } = await storeFor(t);
  const token = await create();
  t.equal((await store.identify(token)).result, 'ok');
  // The lifetime is Redis's own expiry (the store has no clock to move): put it in the past.
  await redis.pexpireat(keyOf(token), Date.now() - 1);
  t.same(await store.identify(token), { result: 'invalid' });
});

t.test("a user's sessions are indexed: listed newest first, ended one by one or together", async (t) => {
  const { store } = await storeFor(t);
  const first = await store.create(identity, 100, origin);
  const second = await store.create(identity, 100, { device: 'MyApp/2.1', ip: '2001:db8:1::/48' });
  const other = await store.create({ ...identity, sub: '8' }, 100, origin);
  const listed = await store.list(identity.sub);
  t.same(
    listed.map((s) => [s.id, s.device]),
    [
      [second.sid, 'MyApp/2.1'],
      [first.sid, origin.device],
    ],
  );
  t.notOk(await store.end(identity.sub, other.sid), "another user's session cannot be ended by this one");
  t.ok(await store.end(identity.sub, first.sid));
  t.same(await store.identify(first.refresh), { result: 'invalid' }, 'its refresh token is dead');
  const third = await store.create(identity, 100, origin);
  t.same(await store.endAll(identity.sub, third.sid), { ids: [second.sid], live: 1 }, 'all but the kept one');
  t.same(
    (await store.list(identity.sub)).map((s) => s.id),
    [third.sid],
  );
  t.equal((await store.identify(other.refresh)).result, 'ok', "the other user's session lives on");
});

t.test('endBegunBy ends the sessions begun in or before the given second, not after it', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  let now = 1_800_000_000_000;
  const store = new SessionStore(redis, prefix, () => now);
  const at = async (ms: number) => {
    now = ms;
    return store.create(identity, 100, origin);
  };
  const early = await at(1_800_000_000_000 - 60_000);
  const sameSecond = await at(1_800_000_000_999);
  const nextSecond = await at(1_800_000_001_000);
  const other = await store.create({ ...identity, sub: '8' }, 100, origin);
  t.equal(sameSecond.authTime, 1_800_000_000, 'authTime is the whole second');
  const ended = await store.endBegunBy(identity.sub, 1_800_000_000);
  t.same({ ...ended, ids: ended.ids.sort() }, { ids: [early.sid, sameSecond.sid].sort(), live: 2 });
  t.equal((await store.identify(early.refresh)).result, 'invalid');
  t.equal((await store.identify(sameSecond.refresh)).result, 'invalid', 'at the second itself, as iat <= before');
  t.equal((await store.identify(nextSecond.refresh)).result, 'ok', 'begun after it');
  t.same(
    (await store.list(identity.sub)).map((s) => s.id),
    [nextSecond.sid],
  );
  t.equal((await store.identify(other.refresh)).result, 'ok', "another user's session lives on");
  t.same(await store.endBegunBy(identity.sub, 1_800_000_000), { ids: [], live: 0 }, 'again: nothing left to end');
});

t.test("a session begun at a shorter lifetime does not shorten the index's hold on older ones", async (t) => {
  const { redis, store, prefix } = await storeFor(t);
  const index = `${prefix}:user-sessions:{${identity.sub}}`;
  const first = await store.create(identity, 5, origin);
  // The refresh lifetime was raised: the index follows the longer session.
  const long = await store.create(identity, 3600, origin);
  t.ok((await redis.pttl(index)) > 60_000, 'extended to the longer session');
  // Then lowered again; the user signs in once more.
  const short = await store.create(identity, 5, origin);
  t.ok((await redis.pttl(index)) > 60_000, 'still held for the longest-lived session');
  t.same(
    (await store.list(identity.sub)).map((s) => s.id).sort(),
    [short.sid, long.sid, first.sid].sort(),
    'every session is listed',
  );
});

// A session's index entry and its hash are written together but not atomically: a listing that
// runs between the two must not drop the entry of a session about to appear, and an ending must
// keep the session from appearing after it.
t.test(
  'a session being created is kept in the index by a listing, and one ended meanwhile is not created',
  async (t) => {
    const { redis, store, prefix } = await storeFor(t);
    const index = `${prefix}:user-sessions:{${identity.sub}}`;
    const sid = 'beingcreated0000000000';
    await redis.zadd(index, Date.now() - 2 * INDEX_GRACE_MS, 'expiredlongago0000000a');
    await redis.zadd(index, Date.now(), sid);
    t.same(await store.list(identity.sub), [], 'neither is listed');
    t.equal(await redis.zscore(index, 'expiredlongago0000000a'), null, 'the old entry is dropped');
    t.not(await redis.zscore(index, sid), null, 'the young one is kept');
    t.same(await store.endAll(identity.sub), { ids: [sid], live: 0 });

    // The session's own write lands after the ending, as create() sends it.
    const key = `${prefix}:session:{${sid}}`;
    const commands = redis as unknown as {
      sessionCreate(...args: Array<string | number>): Promise<number>;
    };
    const created = await commands.sessionCreate(
      key,
      `${key}:ended`,
      'h',
      identity.sub,
      identity.phone,
      '[]',
      100_000,
      1,
      1,
      'd',
      'ip',
    );
    t.equal(created, 0, 'it is refused');
    t.equal(await redis.exists(key), 0, 'and never written');
    t.ok((await redis.pttl(`${key}:ended`)) <= INDEX_GRACE_MS, 'the mark lasts the grace only');
  },
);
