import t, { type Test } from 'tap';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pendingNoticeKey, queuePrefix, SMS_QUEUE } from '@refstack/shared/contracts';
import { createSmsQueue, redisOptions } from '@refstack/shared/platform';
import { createTestRedisPrefix, eventually, TEST_REDIS_URL } from '@refstack/shared/testing';
import type { OutgoingSms } from '../../src/sms/message.js';
import { SmsTransientError, type SmsProvider } from '../../src/sms/providers/provider.js';
import { startTestSmsWorker } from './sms-test-worker.js';

const INVITER = '+79123456789';

async function setup(t: Test, env: Record<string, string> = {}, providers?: SmsProvider[]) {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await redis.connect();
  const queue = createSmsQueue(redis, prefix);
  const bull = new Queue(SMS_QUEUE, { connection: redis, prefix: queuePrefix(prefix) });
  t.teardown(async () => {
    await queue.close();
    await bull.close();
    redis.disconnect();
  });
  const worker = await startTestSmsWorker(t, { prefix, env, ...(providers ? { providers } : {}) });
  const activate = (n: number, windowSeconds = 600) =>
    queue.noticeInviter({
      inviterId: '42',
      to: INVITER,
      inviteCode: 'AB12CD',
      invitedCount: n,
      windowSeconds,
      now: Date.now(),
    });
  /** The window's end, brought forward: the delayed notice runs now. */
  const endWindow = async () => {
    const delayed = await bull.getDelayed();
    for (const job of delayed) await job.promote();
    return delayed.length;
  };
  /** Jobs BullMQ was asked to add and answered with the window's job instead. */
  const deduplicatedAdds = async () =>
    (await redis.xrange(bull.keys.events!, '-', '+')).filter(([, fields]) => fields[1] === 'deduplicated').length;
  return { prefix, redis, queue, bull, worker, activate, endWindow, deduplicatedAdds };
}

t.test('1,000 activations within a window make exactly one notice, with the count', async (t) => {
  const { redis, prefix, worker, activate, endWindow } = await setup(t);
  // In parallel and out of order, as activations finish in referral.
  const order = Array.from({ length: 1000 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
  const opened: boolean[] = [];
  for (let i = 0; i < order.length; i += 50)
    opened.push(...(await Promise.all(order.slice(i, i + 50).map((n) => activate(n)))));
  t.equal(opened.filter(Boolean).length, 1, 'one activation opened the window, and says so');
  t.equal(worker.printed.length, 0, 'nothing is sent before the window ends');
  t.equal(await endWindow(), 1, 'one notice waits for the end of the window');
  await eventually('the notice is sent', () => worker.printed.length === 1, 10_000);
  t.same(worker.printed, [`SMS to ${INVITER}: Код приглашения AB12CD активировали: +1000. Всего: 1000 чел.\n`]);
  t.equal(await redis.exists(pendingNoticeKey(prefix, '42')), 0, 'the count was taken');

  // The window's deduplication still holds: a later activation adds to the next notice.
  await activate(1001);
  t.equal(await endWindow(), 0, 'no second notice within the window');
  t.equal(await redis.hget(pendingNoticeKey(prefix, '42'), 'n'), '1', 'counted for the next one');
});

t.test('a notice counts against the daily budget; a spent budget keeps the count for later', async (t) => {
  const { redis, prefix, worker, activate, endWindow } = await setup(t, { SMS_DAILY_BUDGET: 'RU:0' });
  await Promise.all([activate(1), activate(2), activate(3)]);
  await endWindow();
  await eventually(
    'the notice is held back',
    () => worker.lines.some((l) => l.msg === 'inviter notice not sent: the day’s sms budget is spent'),
    10_000,
  );
  t.equal(worker.printed.length, 0);
  t.equal(await redis.hget(pendingNoticeKey(prefix, '42'), 'n'), '3', 'the count waits for the next window');
});

t.test('while the window’s job waits, activations only count: no job is offered again', async (t) => {
  const { bull, activate, deduplicatedAdds } = await setup(t);
  for (let n = 1; n <= 200; n += 50) await Promise.all(Array.from({ length: 50 }, (_, i) => activate(n + i)));
  t.equal((await bull.getDelayed()).length, 1, 'one job for the window');
  t.equal(await deduplicatedAdds(), 0, 'the 199 later activations did not ask BullMQ for one');
});

t.test('a count left without a job gets one from the first activation after the window', async (t) => {
  const { redis, prefix, bull, worker, activate, endWindow } = await setup(t);
  // A window of a few seconds: the second activation must land inside it however slow the machine.
  const windowSeconds = 5;
  await activate(1, windowSeconds);
  const [lost] = await bull.getDelayed();
  // A job gone without taking the count, as one that failed for good.
  await lost?.remove();
  await activate(2, windowSeconds);
  t.equal((await bull.getDelayed()).length, 0, 'within the window, the count waits');
  let n = 2;
  await eventually(
    'an activation after the window queues a job',
    async () => {
      await activate((n += 1), windowSeconds);
      return (await bull.getDelayed()).length === 1;
    },
    30_000,
    100,
  );
  await endWindow();
  await eventually('the notice is sent', () => worker.printed.length === 1, 10_000);
  t.same(worker.printed, [`SMS to ${INVITER}: Код приглашения AB12CD активировали: +${n}. Всего: ${n} чел.\n`]);
  t.equal(await redis.exists(pendingNoticeKey(prefix, '42')), 0, 'the count was taken');
});

t.test('an activation whose job BullMQ deduplicated lets the next one try again', async (t) => {
  const { redis, prefix, worker, activate, endWindow, deduplicatedAdds } = await setup(t);
  await activate(1);
  await endWindow();
  await eventually('the first notice is sent', () => worker.printed.length === 1, 10_000);
  // The job ran before BullMQ's deduplication ended: the next activation's job is refused.
  await activate(2);
  t.equal(await deduplicatedAdds(), 1);
  t.equal(await redis.hget(pendingNoticeKey(prefix, '42'), 'queued'), null, 'no job is taken as queued');
  await activate(3);
  t.equal(await deduplicatedAdds(), 2, 'the next activation asked again');
  t.equal(await redis.hget(pendingNoticeKey(prefix, '42'), 'n'), '2', 'both wait for the next notice');
});

t.test('a notice taken before its inviter moved is not sent to the number the account left', async (t) => {
  let failing = true;
  let calls = 0;
  const sent: OutgoingSms[] = [];
  const provider: SmsProvider = {
    name: 'smsru',
    carries: () => true,
    async send(message) {
      calls += 1;
      if (failing) throw new SmsTransientError('smsru: HTTP 500', 'HTTP 500');
      sent.push(message);
      return { providerMessageId: `smsru-${calls}` };
    },
  };
  const { redis, prefix, queue, bull, worker } = await setup(t, {}, [provider]);
  await queue.noticeInviter({
    inviterId: '42',
    to: INVITER,
    inviteCode: 'AB12CD',
    invitedCount: 1,
    windowSeconds: 1,
    now: Date.now(),
  });
  // The window ends, its count is taken and its notice fails at the provider: the job waits for a
  // retry, and the window's deduplication, through which a job still waiting is found, is over.
  await eventually('the notice to fail once', () => calls >= 1, 20_000);
  t.equal(await redis.exists(pendingNoticeKey(prefix, '42')), 0, 'the count was taken');
  await eventually(
    'the window’s deduplication to end',
    async () => !(await bull.getDeduplicationJobId('notice:42')),
    20_000,
    100,
  );
  // Paused while the inviter moves, so that no try is half-way through meanwhile.
  await worker.worker.pause();
  const callsBefore = calls;
  await queue.forgetInviter('42');
  failing = false;
  worker.worker.resume();
  const dropped = () => worker.lines.some((l) => l.msg === 'sms dropped: the inviter’s number changed');
  await eventually('the retry to settle the notice', () => dropped() || sent.length > 0, 20_000);
  t.same(sent, [], 'the number the account left gets nothing');
  t.ok(dropped(), 'the retry dropped the notice');
  t.equal(calls, callsBefore, 'the provider was not asked again');
});

t.test('a notice queued before its inviter moved takes no count from after the move', async (t) => {
  const { queue, bull, worker, activate } = await setup(t);
  await worker.worker.pause();
  const NEW_NUMBER = '+79123450042';
  await activate(1);
  const [early] = await bull.getDelayed();
  // Its window's deduplication is over, as it is when a window's job runs late (a backlog, a
  // restart): moving the account cannot find the job.
  await bull.removeDeduplicationKey('notice:42');
  await queue.forgetInviter('42');
  // After the move, someone activates the code: a count and a job for the new number.
  await queue.noticeInviter({
    inviterId: '42',
    to: NEW_NUMBER,
    inviteCode: 'AB12CD',
    invitedCount: 2,
    windowSeconds: 600,
    now: Date.now(),
  });
  const late = (await bull.getDelayed()).find((job) => job.id !== early?.id);
  t.ok(early && late, 'two jobs wait: the one from before the move and the one after');
  // The early job runs first.
  await early?.promote();
  worker.worker.resume();
  const dropped = () => worker.lines.some((l) => l.msg === 'sms dropped: the inviter’s number changed');
  await eventually('the early job to settle', () => dropped() || worker.printed.length > 0, 20_000);
  t.same(worker.printed, [], 'nothing went to the number the account left');
  await late?.promote();
  await eventually('the late job to send its notice', () => worker.printed.length > 0, 20_000);
  t.same(worker.printed, [`SMS to ${NEW_NUMBER}: Код приглашения AB12CD активировали: +1. Всего: 2 чел.\n`]);
});
