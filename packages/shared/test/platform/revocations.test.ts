import t from 'tap';
import { closeRedis, connectRedis } from '../../src/platform/redis.js';
import { Revocations } from '../../src/platform/revocations.js';
import { createTestRedisPrefix, eventually, TEST_REDIS_URL, type Teardownable } from '../../src/testing/index.js';

async function pair(t: Teardownable, now = () => Date.now()) {
  const prefix = createTestRedisPrefix(t);
  const redis = await connectRedis(TEST_REDIS_URL, 'api');
  t.teardown(() => closeRedis(redis));
  const make = () => {
    const revocations = new Revocations(redis, prefix, { accessTtlSeconds: 900, resyncMs: 0, now });
    t.teardown(() => revocations.stop());
    return revocations;
  };
  return { redis, prefix, make };
}

const token = (sub: string, sid: string, iat = Math.floor(Date.now() / 1000)) => ({ sub, sid, iat });

t.test('an ended session reaches another process over the channel', async (t) => {
  const { make } = await pair(t);
  const publisher = make();
  const listener = make();
  await listener.start();
  const announced: unknown[] = [];
  listener.onRevoked((batch) => announced.push(...batch));
  t.notOk(listener.isRevoked(token('1', 's1')));
  await publisher.publish([{ sid: 's1' }]);
  await eventually('the listener to know', () => listener.isRevoked(token('1', 's1')), 5000, 10);
  t.notOk(listener.isRevoked(token('1', 's2')), 'another session of the same user still works');
  t.same(announced, [{ sid: 's1' }], 'listeners hear the batch');
});

// Auth ends a blocked user's sessions from its listener: a block published while it was down or
// reconnecting must reach the listener too, not only the map.
t.test('listeners also get what a resync reads that the process had not heard, once', async (t) => {
  const { make } = await pair(t);
  const publisher = make();
  await publisher.publish([{ sid: 'early' }, { sub: '3', before: 50 }]);
  const late = make();
  const heard: Array<[unknown[], string]> = [];
  late.onRevoked((batch, how) => heard.push([batch, how]));
  await late.start();
  t.same(heard, [[[{ sid: 'early' }, { sub: '3', before: 50 }], 'replayed']], 'read at start, marked as replayed');

  await publisher.publish([{ sub: '4', before: 60 }]);
  await eventually('the announcement', () => heard.length === 2, 5000, 10);
  t.same(heard[1], [[{ sub: '4', before: 60 }], 'announced']);
  await late.resync();
  t.equal(heard.length, 2, 'nothing heard already is replayed');

  // Missed (its subscription down): a later block of a known user is news again, a repeat is not.
  await late.stop();
  await publisher.publish([
    { sub: '3', before: 70 },
    { sub: '4', before: 60 },
  ]);
  await late.resync();
  t.same(heard.at(-1), [[{ sub: '3', before: 70 }], 'replayed']);
  await late.resync();
  t.equal(heard.length, 3, 'once');
});

t.test('a user entry refuses the tokens issued up to its time, not later ones', async (t) => {
  const { make } = await pair(t);
  const publisher = make();
  const listener = make();
  await listener.start();
  await publisher.publish([{ sub: '7', before: 1000 }]);
  await eventually('the listener to know', () => listener.isRevoked({ sub: '7', iat: 1000 }), 5000, 10);
  t.ok(listener.isRevoked({ sub: '7', iat: 999, sid: 'x' }));
  t.notOk(listener.isRevoked({ sub: '7', iat: 1001 }), 'a token issued after it (an unblocked user signing in)');
  t.notOk(listener.isRevoked({ sub: '8', iat: 10 }));
});

t.test('what was published while a process was not listening is read when it starts', async (t) => {
  const { make } = await pair(t);
  await make().publish([{ sid: 'early' }, { sub: '3', before: 50 }]);
  const late = make();
  t.notOk(late.isRevoked(token('1', 'early')));
  await late.start();
  t.ok(late.isRevoked(token('1', 'early')));
  t.ok(late.isRevoked({ sub: '3', iat: 40 }));
});

t.test('entries stop mattering once every token they cover has expired', async (t) => {
  let clock = Date.now();
  const { make, redis, prefix } = await pair(t, () => clock);
  const publisher = make();
  await publisher.publish([{ sid: 'old' }]);
  clock += 900_000 + 6000;
  await publisher.publish([{ sid: 'new' }]);
  t.same(
    (await redis.zrangebyscore(`${prefix}:revocations`, '-inf', '+inf')).map((m) => JSON.parse(m) as unknown),
    [{ sid: 'new' }],
    'the set keeps only entries that still cover a live token',
  );
  const fresh = make();
  await fresh.start();
  t.notOk(fresh.isRevoked(token('1', 'old')));
  t.ok(fresh.isRevoked(token('1', 'new')));
});
