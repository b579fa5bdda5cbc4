import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { redisOptions } from '@refstack/shared/platform';
import { createTestRedisPrefix, TEST_REDIS_URL } from '@refstack/shared/testing';
import { OtpStore, type OtpLimits } from '../../src/otp/otp-store.js';
import { MessageLog } from '../../src/sms/message-log.js';

const PHONE = '+79123456789';
const OTHER = '+79123456700';

const limits: OtpLimits = {
  ttlMs: 300_000,
  maxAttempts: 5,
  resendMs: 60_000,
  maxSendsPerHour: 5,
  maxFailedPerDay: 20,
  phoneFailedPerDay: 100,
  claimMs: 10_000,
};

/** A Redis connection and a key prefix of the test's own. */
async function connect(t: Test) {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await redis.connect();
  t.teardown(() => redis.disconnect());
  return { prefix, redis };
}

/**
 * A number is forgotten when its account is deleted or moves away. Its keys are found through its
 * own lists (the clients with counters under it, its messages), never by a scan of the keyspace, so
 * this checks that those lists name every key there is: with codes asked for by three clients,
 * wrong tries from three (one of them asked for none), and more messages than a phone keeps.
 */
t.test('forgetting a number removes every key and value that names it, and nothing of another', async (t) => {
  const { prefix, redis } = await connect(t);
  const otp = new OtpStore(redis, prefix);
  const log = new MessageLog(redis, prefix);

  const start = Date.now();
  for (const phone of [PHONE, OTHER]) {
    t.match(await otp.issue(phone, 'client-a', 'hash-1', limits, start), { result: 'ok' });
    for (const [n, client] of ['client-a', 'client-b', 'client-c'].entries()) {
      t.match(await otp.check(phone, client, 'wrong', `claim-${n}`, limits, start + 1 + n), { result: 'invalid' });
    }
    t.match(await otp.issue(phone, 'client-b', 'hash-2', limits, start + limits.resendMs), { result: 'ok' });
    t.match(await otp.issue(phone, 'client-d', 'hash-3', limits, start + 2 * limits.resendMs), { result: 'ok' });
    for (let i = 1; i <= 55; i++) {
      const ref = { id: `${phone}-${i}`, kind: 'otp' as const, to: phone, country: 'RU' };
      await log.open(ref, start + i);
      await log.sent(ref, 'smsru', `provider-${phone}-${i}`, start + i);
    }
  }

  /** Every key of the test's prefix whose name or string value holds `phone`. */
  const naming = async (phone: string) => {
    const found: string[] = [];
    for (const key of await redis.keys(`${prefix}:*`)) {
      const value = (await redis.type(key)) === 'string' ? await redis.get(key) : '';
      if (key.includes(phone) || value?.includes(phone)) found.push(key);
    }
    return found.sort();
  };
  const before = await naming(PHONE);
  t.ok(
    before.some((key) => key.endsWith(':fails:client-c')) &&
      before.some((key) => key.endsWith(':sends:client-d')) &&
      before.some((key) => key.includes(':sms:pid:')),
    'the number had per-client counters and receipt index entries',
  );
  t.equal(
    before.filter((key) => key.includes(':m:')).length,
    50,
    'the five oldest messages left with their place in the list',
  );
  t.notOk(
    before.some((key) => key.endsWith(`provider-${PHONE}-1`)),
    'and so did their receipt index entries',
  );
  const other = await naming(OTHER);

  await otp.forget(PHONE);
  await log.forget(PHONE);
  t.same(await naming(PHONE), [], 'nothing names the number any more');
  t.same(await naming(OTHER), other, "another number's keys are all there");
});

t.test('a message the provider took while its number was being forgotten leaves nothing behind', async (t) => {
  const { prefix, redis } = await connect(t);
  const log = new MessageLog(redis, prefix);
  const ref = { id: 'late', kind: 'otp' as const, to: PHONE, country: 'RU' };
  await log.open(ref, Date.now());
  await log.forget(PHONE);
  const applied = await log.sent(ref, 'smsru', 'provider-late', Date.now());
  t.notOk(applied.record, 'the record stays gone');
  t.same(await redis.keys(`${prefix}:*`), [], 'and no receipt index entry names the number');
});
