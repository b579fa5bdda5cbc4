import t from 'tap';
import { Redis } from 'ioredis';
import { createTestRedisPrefix, TEST_REDIS_URL, type Teardownable } from '@refstack/shared/testing';
import { SessionStore } from '../../src/tokens/session-store.js';

const identity = { sub: '7', phone: '+79608543017', roles: ['admin'] };

async function storeFor(t: Teardownable) {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const store = new SessionStore(redis, prefix);
  const keyOf = (token: string) => `${prefix}:session:{${token.split('.')[0] ?? ''}}`;
  return { redis, store, keyOf };
}

t.test('identify answers the current token again and again and changes nothing', async (t) => {
  const { redis, store, keyOf } = await storeFor(t);
  const token = await store.create(identity, 100);
  const before = await redis.hgetall(keyOf(token));
  const ttlBefore = await redis.pttl(keyOf(token));
  for (let i = 0; i < 3; i++) t.same(await store.identify(token), { result: 'ok', identity }, `call ${i + 1}`);
  t.same(await redis.hgetall(keyOf(token)), before, 'the session hash is untouched');
  t.ok((await redis.pttl(keyOf(token))) <= ttlBefore, 'the absolute expiry is not extended');
  t.equal(await redis.exists(`${keyOf(token)}:spent`), 0, 'nothing was spent');
  t.equal((await store.rotate(token)).result, 'ok', 'the token is still the current one for rotation');
});

t.test('identify with a spent token is reuse and revokes the family', async (t) => {
  const { redis, store, keyOf } = await storeFor(t);
  const first = await store.create(identity, 100);
  const rotated = await store.rotate(first);
  if (rotated.result !== 'ok') throw new Error('rotation failed');
  t.same(await store.identify(first), { result: 'reused' });
  t.equal(await redis.exists(keyOf(first), `${keyOf(first)}:spent`), 0, 'the session and its spent set are gone');
  t.same(await store.identify(rotated.refresh), { result: 'invalid' }, 'the newest token died with it');
  t.same(await store.rotate(rotated.refresh), { result: 'invalid' });
});

t.test('identify refuses revoked, unknown, foreign and malformed tokens without touching the session', async (t) => {
  const { store } = await storeFor(t);
  const revoked = await store.create(identity, 100);
  t.equal(await store.revoke(revoked), 'ok');
  t.same(await store.identify(revoked), { result: 'invalid' }, 'revoked');

  const live = await store.create(identity, 100);
  const [sessionId] = live.split('.');
  // Same session id, another secret: a guess, not a spent token, so the session lives on.
  t.same(await store.identify(`${sessionId}.${'A'.repeat(43)}`), { result: 'invalid' }, 'guessed secret');
  t.same(await store.identify(live), { result: 'ok', identity }, 'the guess did not revoke the session');
  for (const garbage of ['', 'garbage', `${'a'.repeat(22)}.${'b'.repeat(43)}`, `${live}x`]) {
    t.same(await store.identify(garbage), { result: 'invalid' }, JSON.stringify(garbage));
  }
});

t.test('identify ends with the absolute lifetime', async (t) => {
  const { redis, store, keyOf } = await storeFor(t);
  const token = await store.create(identity, 100);
  t.equal((await store.identify(token)).result, 'ok');
  // The lifetime is Redis's own expiry (the store has no clock to move): put it in the past.
  await redis.pexpireat(keyOf(token), Date.now() - 1);
  t.same(await store.identify(token), { result: 'invalid' });
});
