import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { redisOptions } from '@refstack/shared/platform';
import { createTestRedisPrefix, TEST_REDIS_URL } from '@refstack/shared/testing';
import { MESSAGE_STATUS_TTL_MS, MessageLog } from '../../src/sms/message-log.js';
import { formatMessages } from '../../src/sms/message-report.js';

const PHONE = '+79123456789';

async function setup(t: Test) {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await redis.connect();
  t.teardown(() => redis.disconnect());
  return { redis, prefix, log: new MessageLog(redis, prefix) };
}

const ref = (id: string, to = PHONE) => ({ id, kind: 'otp' as const, to, country: 'RU' });

t.test('a message moves forward only: queued, sent, delivered; receipts never move it back', async (t) => {
  const { log } = await setup(t);
  const at = 1_800_000_000_000;
  t.match(await log.open(ref('1'), at), { status: 'queued', provider: null, events: [{ event: 'queued', at }] });
  t.match(
    await log.open(ref('1'), at + 5),
    { status: 'queued', events: [{ event: 'queued' }] },
    'opening twice is a no-op',
  );
  await log.attemptFailed(ref('1'), 'smsru', 'HTTP 500', at + 10);
  const sent = await log.sent(ref('1'), 'smsc', 'smsc-77', at + 20);
  t.match(sent, {
    changed: true,
    previous: 'queued',
    record: { status: 'sent', provider: 'smsc', provider_message_id: 'smsc-77' },
  });

  t.match(
    await log.receipt('smsru', 'smsc-77', 'delivered', undefined, at + 30),
    { changed: false },
    "another provider's id",
  );
  t.match(await log.receipt('smsc', 'nope', 'delivered', undefined, at + 30), { changed: false, record: undefined });
  const delivered = await log.receipt('smsc', 'smsc-77', 'delivered', undefined, at + 40);
  t.match(delivered, { changed: true, previous: 'sent', record: { status: 'delivered' } });
  t.match(
    await log.receipt('smsc', 'smsc-77', 'sent', undefined, at + 50),
    { changed: false },
    'a late "sent" is ignored',
  );
  t.match(await log.receipt('smsc', 'smsc-77', 'failed', '30003', at + 60), { changed: false }, 'delivered is final');
  const record = await log.get(PHONE, '1');
  t.same(
    record?.events.map((e) => [e.event, e.provider ?? null, e.reason ?? null]),
    [
      ['queued', null, null],
      ['attempt_failed', 'smsru', 'HTTP 500'],
      ['sent', 'smsc', null],
      ['delivered', 'smsc', null],
    ],
  );
  t.match(
    formatMessages(PHONE, [record!]),
    /#1 {2}otp {2}delivered via smsc \(smsc-77\)\n.*queued\n.*attempt_failed smsru: HTTP 500/,
  );
});

t.test('a failed message keeps the reason; an attempt after the provider took it is not recorded', async (t) => {
  const { log } = await setup(t);
  await log.open(ref('2'), 1);
  await log.sent(ref('2'), 'twilio', 'SM1', 2);
  t.match(await log.attemptFailed(ref('2'), 'smsru', 'late', 3), { changed: false });
  t.match(await log.receipt('twilio', 'SM1', 'failed', '30003 unreachable handset', 4), {
    changed: true,
    record: { status: 'failed', reason: '30003 unreachable handset' },
  });
  t.match(await log.receipt('twilio', 'SM1', 'delivered', undefined, 5), { changed: false }, 'failed is final');
  await log.open(ref('3'), 10);
  t.match(await log.failed(ref('3'), undefined, 'expired before a provider took it', 11), {
    record: { status: 'failed', provider: null, reason: 'expired before a provider took it' },
  });
});

t.test('expiry fails only a message no provider took', async (t) => {
  const { log } = await setup(t);
  await log.open(ref('5'), 1);
  t.match(await log.expired(ref('5'), 'expired before a provider took it', 2), {
    changed: true,
    record: { status: 'failed', provider: null, reason: 'expired before a provider took it' },
  });
  // Another run of the same job had a provider take it between this run's open and its expiry.
  await log.open(ref('6'), 1);
  await log.sent(ref('6'), 'smsru', '000000-6', 2);
  t.match(await log.expired(ref('6'), 'expired before a provider took it', 3), {
    changed: false,
    record: { status: 'sent', provider: 'smsru', reason: null },
  });
  await log.receipt('smsru', '000000-6', 'delivered', undefined, 4);
  t.match(await log.expired(ref('6'), 'expired before a provider took it', 5), {
    changed: false,
    record: { status: 'delivered' },
  });
});

t.test("a receipt that arrives before the worker recorded the provider's acceptance is not lost", async (t) => {
  const { redis, log } = await setup(t);
  await log.open(ref('4'), 1);
  // The provider index is written first, then the 'sent' step: the receipt lands in between.
  const write = redis.set.bind(redis) as (...args: unknown[]) => Promise<unknown>;
  let early: Promise<unknown> | undefined;
  (redis as unknown as { set: (...args: unknown[]) => Promise<unknown> }).set = async (...args) => {
    const written = await write(...args);
    early ??= log.receipt('smsru', '000000-4', 'delivered', undefined, 3);
    await early;
    return written;
  };
  await log.sent(ref('4'), 'smsru', '000000-4', 2);
  t.match(await early, { changed: true }, 'taken by the message');
  t.match(await log.get(PHONE, '4'), {
    status: 'delivered',
    provider: 'smsru',
    provider_message_id: '000000-4',
  });
  t.match(
    await log.receipt('smsc', '000000-4', 'failed', 'x', 4),
    { changed: false },
    "another provider's receipt still cannot touch it",
  );
});

t.test('a message two providers took (a job run twice) takes receipts from the one it records only', async (t) => {
  const { redis, prefix, log } = await setup(t);
  await log.open(ref('6'), 1);
  await log.sent(ref('6'), 'smsc', 'smsc-6', 2);
  // The other run's provider took it too: its index names the same message.
  await redis.set(`${prefix}:sms:pid:smsru:000000-6`, JSON.stringify({ to: PHONE, id: '6' }));
  t.match(await log.receipt('smsru', '000000-6', 'failed', 'x', 3), { changed: false }, "the other's receipt");
  t.match(await log.get(PHONE, '6'), { status: 'sent', provider: 'smsc' });
  t.match(await log.receipt('smsc', 'smsc-6', 'delivered', undefined, 4), { changed: true });
});

t.test('a phone lists its newest messages; statuses expire after seven days', async (t) => {
  const { log, redis, prefix } = await setup(t);
  const start = Date.now();
  for (let i = 1; i <= 55; i++) await log.open(ref(String(i)), start + i);
  const listed = await log.list(PHONE);
  t.equal(listed.length, 50, 'the newest 50');
  t.equal(listed[0]?.id, '55');
  t.same(await log.list('+79000000000'), []);
  const ttl = await redis.pttl(`${prefix}:sms:{${PHONE}}:m:55`);
  t.ok(ttl > MESSAGE_STATUS_TTL_MS - 60_000 && ttl <= MESSAGE_STATUS_TTL_MS, `kept 7 days (${ttl} ms)`);
  t.ok((await redis.pttl(`${prefix}:sms:{${PHONE}}:list`)) > 0, 'the list expires too');
  await log.sent(ref('55'), 'smsru', '000000-1', start + 100);
  t.ok((await redis.pttl(`${prefix}:sms:pid:smsru:000000-1`)) > 0, 'and the receipt index');
  const keys = await redis.keys(`${prefix}:sms:*`);
  for (const key of keys) t.ok((await redis.pttl(key)) > 0, `${key} expires`);
});

t.test('the last code message of a phone: taken by a provider, within the window', async (t) => {
  const { log } = await setup(t);
  await log.open(ref('a'), 1000);
  await log.sent(ref('a'), 'telegram', 'r1', 1001);
  await log.open(ref('b'), 2000);
  t.match(await log.lastCodeMessage(PHONE, 500), { id: 'a', provider: 'telegram' }, 'b is not taken yet');
  t.equal(await log.lastCodeMessage(PHONE, 1500), undefined, 'a is older than the window');
  t.equal(await log.lastCodeMessage(PHONE, 500, 'a'), undefined, 'except the message itself');
});
