import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { queuePrefix, type SmsJob } from '@refstack/shared/contracts';
import { createSmsQueue, redisOptions } from '@refstack/shared/platform';
import { createTestRedisPrefix, redisContents, TEST_REDIS_URL } from '@refstack/shared/testing';
import { consoleSmsProvider, SmsPermanentError, type SmsProvider } from '../../src/sms/sms-provider.js';
import { createSmsWorker } from '../../src/sms/sms-consumer.js';

const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

const inFiveMinutes = () => Date.now() + 300_000;
const otp = (code: string, expiresAt = inFiveMinutes()): SmsJob => ({
  kind: 'otp',
  to: '+79123456789',
  text: `Your login code is ${code}. It expires in 5 minutes.`,
  expiresAt,
});

async function setup(t: Test, provider: SmsProvider, clock: () => number = Date.now) {
  const prefix = createTestRedisPrefix(t);
  const producer = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await producer.connect();
  const consumer = new Redis(TEST_REDIS_URL, redisOptions('worker'));
  await consumer.connect();
  const queue = createSmsQueue(producer, prefix);
  const worker = createSmsWorker({
    connection: consumer,
    prefix: queuePrefix(prefix),
    provider,
    concurrency: 4,
    log: quietLog,
    now: clock,
  });
  t.teardown(async () => {
    await worker.close();
    await queue.close();
    producer.disconnect();
    consumer.disconnect();
  });
  return { queue, worker, producer, prefix };
}

function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() > deadline) return reject(new Error('timed out waiting'));
      setTimeout(tick, 20);
    };
    tick();
  });
}

t.test('prints exactly one contract line per job, and the job leaves Redis', async (t) => {
  const lines: string[] = [];
  const { queue, worker, producer, prefix } = await setup(
    t,
    consoleSmsProvider((line) => lines.push(line)),
  );
  const done: string[] = [];
  worker.on('completed', (job) => done.push(String(job.id)));
  await queue.send(otp('1234'));
  await queue.send({
    kind: 'invite_activated',
    to: '+79001234567',
    text: 'Someone activated your invite code.\nThanks!',
    expiresAt: inFiveMinutes(),
  });
  await waitFor(() => done.length === 2, 5000);
  t.same(lines.sort(), [
    'SMS to +79001234567: Someone activated your invite code. Thanks!\n',
    'SMS to +79123456789: Your login code is 1234. It expires in 5 minutes.\n',
  ]);
  const left = await producer.keys(`${queuePrefix(prefix)}:sms:[0-9]*`);
  t.same(left, [], 'no job data remains');
});

t.test('a failing provider is retried with backoff until it succeeds, printing once', async (t) => {
  const lines: string[] = [];
  let calls = 0;
  const flaky: SmsProvider = {
    name: 'flaky',
    async send(to, text) {
      calls += 1;
      if (calls < 3) throw new Error('provider timeout');
      lines.push(`SMS to ${to}: ${text}\n`);
    },
  };
  const { queue, worker } = await setup(t, flaky);
  const attempts: number[] = [];
  worker.on('failed', (job) => attempts.push(job?.attemptsMade ?? -1));
  const started = Date.now();
  await queue.send(otp('0042'));
  await waitFor(() => lines.length === 1, 10_000);
  t.equal(calls, 3, 'two failures, then success');
  t.same(attempts, [1, 2]);
  t.ok(Date.now() - started >= 250 + 500, 'the retries waited (exponential backoff with jitter)');
  t.same(lines, ['SMS to +79123456789: Your login code is 0042. It expires in 5 minutes.\n']);
});

t.test('closing finishes the job in hand before it resolves', async (t) => {
  const lines: string[] = [];
  let started = false;
  const slow: SmsProvider = {
    name: 'slow',
    async send(to, text) {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 400));
      lines.push(`SMS to ${to}: ${text}\n`);
    },
  };
  const { queue, worker } = await setup(t, slow);
  await queue.send(otp('7777'));
  await waitFor(() => started, 5000);
  await worker.close();
  t.same(
    lines,
    ['SMS to +79123456789: Your login code is 7777. It expires in 5 minutes.\n'],
    'the message went out before close resolved',
  );
});

/** The code is nowhere in Redis: not in a job, not in an event, not in any other key. */
async function noTraceOf(t: Test, producer: Redis, prefix: string, code: string) {
  const contents = await redisContents(producer, prefix);
  const holding = [...contents].filter(([, value]) => value.includes(code)).map(([key]) => key);
  t.same(holding, [], `no key holds ${code} (${contents.size} keys searched)`);
}

t.test('a sent message leaves no trace of its text in Redis', async (t) => {
  const sent: string[] = [];
  const { queue, worker, producer, prefix } = await setup(
    t,
    consoleSmsProvider((line) => sent.push(line)),
  );
  const done: string[] = [];
  worker.on('completed', (job) => done.push(String(job.id)));
  await queue.send(otp('739105'));
  await waitFor(() => done.length === 1, 5000);
  t.equal(sent.length, 1);
  await noTraceOf(t, producer, prefix, '739105');
});

t.test('a message the provider refuses for good is not retried and leaves no trace', async (t) => {
  let calls = 0;
  const refusing: SmsProvider = {
    name: 'refusing',
    async send() {
      calls += 1;
      throw new SmsPermanentError('the number is blocked');
    },
  };
  const { queue, worker, producer, prefix } = await setup(t, refusing);
  const failed: number[] = [];
  worker.on('failed', (job) => failed.push(job?.attemptsMade ?? -1));
  await queue.send(otp('418263'));
  await waitFor(() => failed.length === 1, 5000);
  t.equal(calls, 1, 'asked once');
  await noTraceOf(t, producer, prefix, '418263');
});

t.test('a message past its expiry is dropped unsent, and leaves no trace', async (t) => {
  let now = Date.now();
  let calls = 0;
  const down: SmsProvider = {
    name: 'down',
    async send() {
      calls += 1;
      throw new Error('provider unreachable');
    },
  };
  const { queue, worker, producer, prefix } = await setup(t, down, () => now);
  const completed: string[] = [];
  worker.on('completed', (job, result) => completed.push(String(result)));
  await queue.send(otp('552910', now + 300_000));
  await waitFor(() => calls >= 1, 5000);
  // The code expires while the provider is still down: the next retry drops the message.
  now += 300_000;
  const callsAtExpiry = calls;
  await waitFor(() => completed.length === 1, 10_000);
  t.same(completed, ['expired']);
  t.ok(calls <= callsAtExpiry + 1, 'no send after the expiry was noticed');
  await noTraceOf(t, producer, prefix, '552910');

  // A message that waited in the queue past its expiry (no worker ran) is not sent either.
  const late: string[] = [];
  const fresh = await setup(
    t,
    consoleSmsProvider((line) => late.push(line)),
    () => Date.now() + 600_000,
  );
  const dropped: string[] = [];
  fresh.worker.on('completed', (job, result) => dropped.push(String(result)));
  await fresh.queue.send(otp('660271'));
  await waitFor(() => dropped.length === 1, 5000);
  t.same(dropped, ['expired']);
  t.same(late, [], 'nothing was printed');
  await noTraceOf(t, fresh.producer, fresh.prefix, '660271');
});
