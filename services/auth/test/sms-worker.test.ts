import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { createSmsQueue, queuePrefix, redisOptions } from '@refstack/shared';
import { createTestRedisPrefix, TEST_REDIS_URL } from '@refstack/shared/testing';
import { consoleSmsProvider, type SmsProvider } from '../src/sms/sms-provider.js';
import { createSmsWorker } from '../src/sms/sms-worker.js';

const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup(t: Test, provider: SmsProvider) {
  const prefix = createTestRedisPrefix(t);
  const producer = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await producer.connect();
  const consumer = new Redis(TEST_REDIS_URL, redisOptions('worker'));
  await consumer.connect();
  const queue = createSmsQueue(producer, prefix);
  const worker = createSmsWorker({ connection: consumer, prefix: queuePrefix(prefix), provider, concurrency: 4, log: quietLog });
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
  const { queue, worker, producer, prefix } = await setup(t, consoleSmsProvider((line) => lines.push(line)));
  const done: string[] = [];
  worker.on('completed', (job) => done.push(String(job.id)));
  await queue.send({ kind: 'otp', to: '+79123456789', text: 'Your login code is 1234. It expires in 5 minutes.' });
  await queue.send({ kind: 'invite_activated', to: '+79001234567', text: 'Someone activated your invite code.\nThanks!' });
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
  await queue.send({ kind: 'otp', to: '+79123456789', text: 'Your login code is 0042. It expires in 5 minutes.' });
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
  await queue.send({ kind: 'otp', to: '+79123456789', text: 'Your login code is 7777. It expires in 5 minutes.' });
  await waitFor(() => started, 5000);
  await worker.close();
  t.same(lines, ['SMS to +79123456789: Your login code is 7777. It expires in 5 minutes.\n'], 'the message went out before close resolved');
});
