import t from 'tap';
import { Redis } from 'ioredis';
import { createTestRedisPrefix, TEST_REDIS_URL } from '@refstack/shared/testing';
import { UnfinishedChanges } from '../../src/account/unfinished-change.js';

t.test('finishing a change removes its own record, not a newer one of the same kind', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const changes = new UnfinishedChanges(redis, prefix);
  const index = `${prefix}:account:unfinished`;

  // The sweep holds the first move while the user begins a second one.
  const older = await changes.begin('7', { kind: 'move', from: '+79000000001', to: '+79000000002', keep: 's1' }, 1);
  const newer = await changes.begin('7', { kind: 'move', from: '+79000000002', to: '+79000000003', keep: 's2' }, 2);
  t.not(older, newer);
  await changes.finish('7', 'move', older);
  t.match(await changes.get('7', 'move'), { id: newer, from: '+79000000002' }, 'the newer record stays');
  t.same(await redis.zrange(index, '0', '-1'), ['move:7'], 'and so does its index entry, for the sweep');

  await changes.finish('7', 'move', newer);
  t.equal(await changes.get('7', 'move'), undefined);
  t.same(await redis.zrange(index, '0', '-1'), []);
});

t.test('a record kept before records had ids is finished by the empty id', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const changes = new UnfinishedChanges(redis, prefix);
  await redis.set(
    `${prefix}:account:unfinished-deletion:7`,
    JSON.stringify({ kind: 'deletion', from: '+79000000001' }),
  );
  await redis.zadd(`${prefix}:account:unfinished`, 1, 'deletion:7');
  const [due] = await changes.takeDue(10, 0);
  t.same(due, { sub: '7', change: { kind: 'deletion', from: '+79000000001', id: '' } });
  await changes.finish('7', 'deletion', due?.change.id ?? 'none');
  t.equal(await changes.get('7', 'deletion'), undefined);
  t.same(await redis.zrange(`${prefix}:account:unfinished`, '0', '-1'), []);
});

t.test('the sweep leaves a change begun under an entry scored for an older one until it is due', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const changes = new UnfinishedChanges(redis, prefix);
  const index = `${prefix}:account:unfinished`;
  const ageMs = 60_000;
  const now = 1_000_000;

  // The entry still carries the score of a move begun long ago; the record under it was begun now
  // (the older move was finished and a new one begun while the sweep took the entry).
  const id = await changes.begin('7', { kind: 'move', from: '+79000000001', to: '+79000000002', keep: 's1' }, now);
  await redis.zadd(index, now - 10 * ageMs, 'move:7');
  t.same(await changes.takeDue(now, ageMs), [], 'not taken while its own request may still run');
  t.match(await changes.get('7', 'move'), { id, at: now }, 'the record stays');
  t.same(await redis.zrange(index, '0', '-1'), ['move:7'], 'and so does its entry');

  const [due] = await changes.takeDue(now + ageMs, ageMs);
  t.match(due, { sub: '7', change: { id } }, 'taken once it is due in its own right');
});
