import t, { type Test } from 'tap';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  parseSmsLine,
  queuePrefix,
  SMS_QUEUE,
  smsJobOptions,
  type SmsJob,
  type SmsProviderName,
} from '@refstack/shared/contracts';
import { createSmsQueue, redisOptions } from '@refstack/shared/platform';
import { createTestRedisPrefix, eventually, redisContents, TEST_REDIS_URL } from '@refstack/shared/testing';
import { OtpStore } from '../../src/otp/otp-store.js';
import { STORE_LIMITS } from '../otp/store-limits.js';
import type { OutgoingSms } from '../../src/sms/message.js';
import { SmsPermanentError, SmsTransientError, type SmsProvider } from '../../src/sms/providers/provider.js';
import { metricValue, startTestSmsWorker } from './sms-test-worker.js';

const RU_PHONE = '+79123456789';
const UK_PHONE = '+447400123456';

const inFiveMinutes = () => Date.now() + 300_000;
const otp = (code: string, expiresAt = inFiveMinutes(), to = RU_PHONE, issueId?: string): SmsJob => ({
  kind: 'otp',
  to,
  code,
  ttlSeconds: 300,
  expiresAt,
  ...(issueId ? { issueId } : {}),
});

async function producer(t: Test, prefix: string) {
  const redis = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await redis.connect();
  const queue = createSmsQueue(redis, prefix);
  t.teardown(async () => {
    await queue.close();
    redis.disconnect();
  });
  return { redis, queue };
}

/** Jobs of the queue still waiting, running or due for a retry: none once a job ended for good. */
async function jobsLeft(t: Test, redis: Redis, prefix: string): Promise<number> {
  const bull = new Queue(SMS_QUEUE, { connection: redis, prefix: queuePrefix(prefix) });
  t.teardown(() => bull.close());
  const counts = await bull.getJobCounts('wait', 'active', 'delayed', 'prioritized');
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** A provider stand-in under a real provider's name, answering as `answer` says. */
function standIn(
  name: SmsProviderName,
  answer: (message: OutgoingSms, call: number) => Promise<void> | void = () => undefined,
  carries: (message: OutgoingSms) => boolean = () => true,
) {
  const sent: OutgoingSms[] = [];
  let calls = 0;
  const provider: SmsProvider = {
    name,
    carries,
    async send(message) {
      calls += 1;
      await answer(message, calls);
      sent.push(message);
      return { providerMessageId: `${name}-${calls}` };
    },
  };
  return {
    provider,
    sent,
    get calls() {
      return calls;
    },
  };
}

/** The code is nowhere in Redis: not in a job, not in an event, not in a status, not in any other key. */
async function noTraceOf(t: Test, redis: Redis, prefix: string, code: string) {
  const contents = await redisContents(redis, prefix);
  const holding = [...contents].filter(([, value]) => value.includes(code)).map(([key]) => key);
  t.same(holding, [], `no key holds ${code} (${contents.size} keys searched)`);
}

t.test('prints one contract line per message, in the language of the number, and the job leaves Redis', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis, queue } = await producer(t, prefix);
  const worker = await startTestSmsWorker(t, { prefix, env: { SMS_WEBOTP_DOMAIN: 'app.example.com' } });
  await queue.send(otp('582046'));
  await queue.send(otp('654321', inFiveMinutes(), UK_PHONE));
  await queue.send({
    kind: 'otp',
    to: UK_PHONE,
    code: '111222',
    ttlSeconds: 300,
    locale: 'ru',
    expiresAt: inFiveMinutes(),
  });
  await queue.send({
    kind: 'invite_activated',
    to: '+79001234567',
    inviteCode: 'AB12CD',
    invitedCount: 2,
    expiresAt: inFiveMinutes(),
  });
  await eventually('the expected state', () => worker.printed.length === 4, 10_000);
  t.same(worker.printed.sort(), [
    'SMS to +447400123456: Your login code is 654321. It expires in 5 minutes.\\n@app.example.com #654321\n',
    'SMS to +447400123456: Код: 111222. Действует 5 мин\\n@app.example.com #111222\n',
    'SMS to +79001234567: Код приглашения AB12CD активировали: +1. Всего: 2 чел.\n',
    'SMS to +79123456789: Код: 582046. Действует 5 мин\\n@app.example.com #582046\n',
  ]);
  t.same(parseSmsLine(worker.printed.find((l) => l.includes('654321'))!.trim())?.text.split('\n'), [
    'Your login code is 654321. It expires in 5 minutes.',
    '@app.example.com #654321',
  ]);
  await eventually(
    'the expected state',
    async () => (await redis.keys(`${queuePrefix(prefix)}:sms:[0-9]*`)).length === 0,
    5000,
  );
  const [record] = await worker.messages.list(RU_PHONE);
  t.match(record, { kind: 'otp', status: 'sent', provider: 'console', country: 'RU' });
  t.equal(await metricValue(worker.registry, 'sms_sent_total', { provider: 'console', kind: 'otp' }), 3);
  await noTraceOf(t, redis, prefix, '582046');
  await noTraceOf(t, redis, prefix, '654321');
});

t.test('a message no provider takes is retried with backoff until one does, and sent once', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  const flaky = standIn('smsru', (_m, call) => {
    if (call < 3) throw new SmsTransientError('smsru: HTTP 500', 'HTTP 500');
  });
  const worker = await startTestSmsWorker(t, { prefix, providers: [flaky.provider] });
  const attempts: number[] = [];
  worker.worker.on('failed', (job) => attempts.push(job?.attemptsMade ?? -1));
  const started = Date.now();
  await queue.send(otp('004200'));
  await eventually('the expected state', () => flaky.sent.length === 1, 10_000);
  t.equal(flaky.calls, 3, 'two failures, then success');
  t.same(attempts, [1, 2]);
  t.ok(Date.now() - started >= 250 + 500, 'the retries waited (exponential backoff with jitter)');
  const [record] = await worker.messages.list(RU_PHONE);
  t.match(record, { status: 'sent', provider: 'smsru', provider_message_id: 'smsru-3' });
  t.same(
    record?.events.map((e) => e.event),
    ['queued', 'attempt_failed', 'attempt_failed', 'sent'],
    'the history shows each failed try',
  );
});

t.test('a transient failure moves the message to the next provider at once', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  const down = standIn('smsru', () => {
    throw new SmsTransientError('smsru: no answer in time', 'timeout');
  });
  const next = standIn('smsc');
  const worker = await startTestSmsWorker(t, { prefix, providers: [down.provider, next.provider] });
  await queue.send(otp('310559'));
  await eventually('the expected state', () => next.sent.length === 1, 5000);
  t.equal(down.calls, 1);
  const [record] = await worker.messages.list(RU_PHONE);
  t.match(record, { status: 'sent', provider: 'smsc' });
  t.match(record?.events[1], { event: 'attempt_failed', provider: 'smsru', reason: 'timeout' });
  t.equal(
    await metricValue(worker.registry, 'sms_provider_attempts_total', { provider: 'smsru', outcome: 'timeout' }),
    1,
  );
});

t.test('a number refused for good is not retried and no other provider is asked', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis, queue } = await producer(t, prefix);
  const refusing = standIn('smsru', () => {
    throw new SmsPermanentError('smsru: 207 no route to this number', '207 no route to this number');
  });
  const next = standIn('smsc');
  const worker = await startTestSmsWorker(t, { prefix, providers: [refusing.provider, next.provider] });
  const failed: string[] = [];
  worker.worker.on('failed', (_job, error) => failed.push(error.name));
  await queue.send(otp('418263'));
  await eventually('the expected state', () => failed.length === 1, 5000);
  t.same(failed, ['UnrecoverableError'], 'failed for good');
  t.equal(await jobsLeft(t, redis, prefix), 0, 'no retry is due');
  t.equal(refusing.calls, 1, 'asked once');
  t.equal(next.calls, 0, 'the next provider is not charged for the same number');
  const [record] = await worker.messages.list(RU_PHONE);
  t.match(record, { status: 'failed', reason: 'smsru: 207 no route to this number' });
  t.equal(await metricValue(worker.registry, 'sms_failed_total', { provider: 'smsru' }), 1);
  await noTraceOf(t, redis, prefix, '418263');
});

t.test('a message past its expiry is dropped unsent, and its status says so', async (t) => {
  let now = Date.now();
  const prefix = createTestRedisPrefix(t);
  const { redis, queue } = await producer(t, prefix);
  const down = standIn('smsru', () => {
    throw new SmsTransientError('smsru: request failed (ECONNREFUSED)', 'network');
  });
  const worker = await startTestSmsWorker(t, { prefix, providers: [down.provider], now: () => now });
  const completed: string[] = [];
  worker.worker.on('completed', (_job, result) => completed.push(String(result)));
  await queue.send(otp('552910', now + 300_000));
  await eventually('the expected state', () => down.calls >= 1, 5000);
  // The code expires while the provider is still down: the next retry drops the message.
  now += 300_000;
  const callsAtExpiry = down.calls;
  await eventually('the expected state', () => completed.length === 1, 10_000);
  t.same(completed, ['expired']);
  t.ok(down.calls <= callsAtExpiry + 1, 'no send after the expiry was noticed');
  const [record] = await worker.messages.list(RU_PHONE);
  t.match(record, { status: 'failed', reason: 'expired before a provider took it', provider: null });
  await noTraceOf(t, redis, prefix, '552910');
});

t.test('a message that waited in the queue past its expiry is never sent, and its status says so', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  const worker = await startTestSmsWorker(t, { prefix, now: () => Date.now() + 600_000 });
  const dropped: string[] = [];
  worker.worker.on('completed', (_job, result) => dropped.push(String(result)));
  await queue.send(otp('660271'));
  await eventually('the expected state', () => dropped.length === 1, 5000);
  t.same(dropped, ['expired']);
  t.same(worker.printed, [], 'nothing was printed');
  const [record] = await worker.messages.list(RU_PHONE);
  t.match(record, { status: 'failed', reason: 'expired before a provider took it', provider: null });
  t.equal(await metricValue(worker.registry, 'sms_failed_total', { provider: 'none' }), 1);
});

t.test('a login code replaced by a newer one before any provider took it is not sent', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis, queue } = await producer(t, prefix);
  const codes = new OtpStore(redis, prefix);
  const limits = STORE_LIMITS;
  const issue = async (hash: string) => {
    const issued = await codes.issue(RU_PHONE, 'client', hash, limits, Date.now());
    if (issued.result !== 'ok') throw new Error(`not issued: ${issued.result}`);
    return issued.issueId;
  };
  let down = true;
  const smsru = standIn('smsru', () => {
    if (down) throw new SmsTransientError('smsru: HTTP 500', 'HTTP 500');
  });
  const worker = await startTestSmsWorker(t, { prefix, providers: [smsru.provider] });
  const results: string[] = [];
  worker.worker.on('completed', (_job, result) => results.push(String(result)));
  await queue.send(otp('111111', inFiveMinutes(), RU_PHONE, await issue('first')));
  await eventually('the first code waits for a provider', () => smsru.calls >= 1, 10_000);
  // Asked for again while the provider is down: only the new code is worth sending.
  const second = await issue('second');
  down = false;
  await queue.send(otp('222222', inFiveMinutes(), RU_PHONE, second));
  await eventually('both jobs are settled', () => results.length === 2, 15_000);
  t.same(results.sort(), ['replaced', 'sent']);
  t.same(
    smsru.sent.map((m) => m.code),
    ['222222'],
    'the replaced code never reached a provider',
  );
  const records = await worker.messages.list(RU_PHONE);
  t.same(records.map((r) => r.status).sort(), ['failed', 'sent']);
  t.match(
    records.find((r) => r.status === 'failed'),
    { reason: 'replaced by a newer code, or used, before a provider took it' },
  );
});

t.test('a code whose number was forgotten while providers failed leaves no record of the number behind', async (t) => {
  // The try after the forgetting comes before the code's expiry, or after it (the last try of a
  // job whose providers stayed down).
  for (const late of [false, true]) {
    await t.test(late ? 'the next try after the expiry' : 'the next try before the expiry', async (t) => {
      const prefix = createTestRedisPrefix(t);
      const { redis, queue } = await producer(t, prefix);
      const codes = new OtpStore(redis, prefix);
      const limits = STORE_LIMITS;
      const issued = await codes.issue(RU_PHONE, 'client', 'hash', limits, Date.now());
      if (issued.result !== 'ok') throw new Error(`not issued: ${issued.result}`);
      const smsru = standIn('smsru', () => {
        throw new SmsTransientError('smsru: HTTP 500', 'HTTP 500');
      });
      let ahead = 0;
      const worker = await startTestSmsWorker(t, {
        prefix,
        providers: [smsru.provider],
        now: () => Date.now() + ahead,
      });
      const results: string[] = [];
      worker.worker.on('completed', (_job, result) => results.push(String(result)));
      await queue.send(otp('333333', inFiveMinutes(), RU_PHONE, issued.issueId));
      await eventually('the code waits for a provider', () => smsru.calls >= 1, 10_000);
      t.equal((await worker.messages.list(RU_PHONE)).length, 1, 'its record while it waits');
      // The account is deleted: auth forgets the number's codes and messages.
      await Promise.all([codes.forget(RU_PHONE), worker.messages.forget(RU_PHONE)]);
      if (late) ahead = 600_000;
      await eventually('the job is settled', () => results.length === 1, 15_000);
      t.same(results, [late ? 'expired' : 'replaced']);
      t.same(await worker.messages.list(RU_PHONE), [], 'no record names the number again');
      t.same(await redis.keys(`${prefix}:sms:{${RU_PHONE}}*`), [], 'nor any key');
    });
  }
});

t.test('a job that stalls more than once is handed on, not dropped', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  // Workers that take a job and freeze: no lock renewal, no answer, as a process stopped by the
  // system or cut off from Redis would.
  const frozen = [1, 2].map(() => {
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(SMS_QUEUE, () => new Promise<never>(() => undefined), {
      connection,
      prefix: queuePrefix(prefix),
      concurrency: 1,
      lockDuration: 300,
      skipLockRenewal: true,
      skipStalledCheck: true,
    });
    t.teardown(async () => {
      await worker.close(true);
      connection.disconnect();
    });
    return worker;
  });
  const taken: string[] = [];
  for (const worker of frozen) worker.on('active', (job) => taken.push(String(job.id)));
  // The system's worker only looks for stalled jobs here (it takes none), every 200 ms.
  const checker = await startTestSmsWorker(t, { prefix, workerOptions: { autorun: false, stalledInterval: 200 } });
  void checker.worker.startStalledCheckTimer();
  await queue.send(otp('454545'));
  await eventually('taken by both frozen workers in turn', () => taken.length === 2, 15_000);
  await Promise.all(frozen.map((worker) => worker.close(true)));
  await checker.worker.close();

  const real = await startTestSmsWorker(t, { prefix });
  await eventually('sent after its second stall', () => real.printed.some((line) => line.includes('454545')), 30_000);
  t.pass('the message went out');
});

t.test('a job run again after its expiry leaves the message a provider took as sent', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis } = await producer(t, prefix);
  const worker = await startTestSmsWorker(t, { prefix, now: () => Date.now() + 600_000 });
  // As after a worker that died between the provider's acceptance and the job's completion, its
  // job taken over only once the code had expired.
  const ref = { id: 'late-1', kind: 'otp' as const, to: RU_PHONE, country: 'RU' };
  await worker.messages.open(ref, Date.now());
  await worker.messages.sent(ref, 'console', undefined, Date.now());
  const queue = new Queue(SMS_QUEUE, { connection: redis, prefix: queuePrefix(prefix) });
  t.teardown(() => queue.close());
  const job = otp('880088');
  const results: string[] = [];
  worker.worker.on('completed', (_job, result) => results.push(String(result)));
  await queue.add('otp', job, { ...smsJobOptions(job), jobId: 'late-1' });
  await eventually('the expected state', () => results.length === 1, 5000);
  t.same(results, ['already_sent']);
  t.match(await worker.messages.get(RU_PHONE, 'late-1'), { status: 'sent', provider: 'console', reason: null });
  t.equal(await metricValue(worker.registry, 'sms_failed_total'), 0, 'not counted as failed');
});

t.test('a refusal whose status cannot be written still ends the job: the provider is not asked again', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis, queue } = await producer(t, prefix);
  const refusing = standIn('smsru', () => {
    throw new SmsPermanentError('smsru: 207 no route to this number', '207 no route to this number');
  });
  const worker = await startTestSmsWorker(t, { prefix, providers: [refusing.provider] });
  worker.messages.failed = () => Promise.reject(new Error('connection lost'));
  const failures: string[] = [];
  worker.worker.on('failed', (_job, error) => failures.push(error.name));
  await queue.send(otp('419263'));
  await eventually('the expected state', () => failures.length === 1, 5000);
  t.same(failures, ['UnrecoverableError'], 'not retried');
  t.equal(await jobsLeft(t, redis, prefix), 0, 'no retry is due');
  t.equal(refusing.calls, 1, 'asked once');
  t.match(
    worker.lines.find((line) => line.msg === 'sms status not recorded'),
    { level: 'error', fields: { reason: 'connection lost' } },
  );
});

t.test('a resend within the code lifetime starts with the next provider, then wraps around', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  const first = standIn('smsru');
  const second = standIn('smsc');
  const worker = await startTestSmsWorker(t, { prefix, providers: [first.provider, second.provider] });
  await queue.send(otp('100001'));
  await eventually('the expected state', () => first.sent.length === 1, 5000);
  await queue.send(otp('100002'));
  await eventually('the expected state', () => second.sent.length === 1, 5000);
  await queue.send(otp('100003'));
  await eventually('the expected state', () => first.sent.length === 2, 5000);
  t.same(
    (await worker.messages.list(RU_PHONE)).map((m) => m.provider),
    ['smsru', 'smsc', 'smsru'],
    'newest first: each resend went through the other provider',
  );
  // Another phone's first code starts with the first provider.
  await queue.send(otp('200001', inFiveMinutes(), '+79001112233'));
  await eventually('the expected state', () => first.sent.length === 3, 5000);
});

// A user signs in (code used at once), then asks for another code within its lifetime: to confirm
// a deletion, or to sign in again after logging out. The first provider carried the last code.
t.test('a code asked for after the previous one was used starts with the first provider again', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis, queue } = await producer(t, prefix);
  const codes = new OtpStore(redis, prefix);
  const first = standIn('smsru');
  const second = standIn('smsc');
  await startTestSmsWorker(t, { prefix, providers: [first.provider, second.provider] });
  const issueAndSend = async (code: string) => {
    const issued = await codes.issue(RU_PHONE, 'client', `hash-${code}`, STORE_LIMITS, Date.now());
    if (issued.result !== 'ok') throw new Error(`not issued: ${issued.result}`);
    const { issueId, replacesLive } = issued;
    await queue.send({
      kind: 'otp',
      to: RU_PHONE,
      code,
      ttlSeconds: 300,
      expiresAt: inFiveMinutes(),
      issueId,
      replacesLive,
    });
    return issued;
  };
  await issueAndSend('300001');
  await eventually('the first code is sent', () => first.sent.length === 1, 5000);
  const checked = await codes.check(RU_PHONE, 'client', 'hash-300001', 'claim-1', STORE_LIMITS, Date.now());
  t.equal(checked.result, 'ok');
  t.ok(await codes.consume(RU_PHONE, 'claim-1'), 'the first code is used');

  const afterUse = await issueAndSend('300002');
  t.equal(afterUse.replacesLive, false, 'the next code replaces no valid one');
  await eventually('the second code is sent', () => first.sent.length + second.sent.length === 2, 5000);
  t.same(
    first.sent.map((m) => m.code),
    ['300001', '300002'],
    'through the first provider again',
  );
  // Asked for again while that one is still valid: a resend, through the other provider.
  const resend = await issueAndSend('300003');
  t.equal(resend.replacesLive, true, 'a resend replaces a valid code');
  await eventually('the resend is sent', () => second.sent.length === 1, 5000);
  t.same(
    second.sent.map((m) => m.code),
    ['300003'],
  );
});

t.test('a provider that does not carry a kind of message is passed over', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  const codesOnly = standIn('telegram', undefined, (m) => m.kind === 'otp');
  const sms = standIn('smsru');
  await startTestSmsWorker(t, { prefix, providers: [codesOnly.provider, sms.provider] });
  await queue.send({
    kind: 'invite_activated',
    to: RU_PHONE,
    inviteCode: 'AB12CD',
    invitedCount: 1,
    expiresAt: inFiveMinutes(),
  });
  await eventually('the expected state', () => sms.sent.length === 1, 5000);
  t.equal(codesOnly.calls, 0);
  await queue.send(otp('123123'));
  await eventually('the expected state', () => codesOnly.sent.length === 1, 5000);
  t.equal(codesOnly.sent[0]?.code, '123123', 'a code provider gets the code itself');
});

t.test('a job whose message a provider already took is not sent again', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis } = await producer(t, prefix);
  const worker = await startTestSmsWorker(t, { prefix });
  // As after a worker that died between the provider's acceptance and the job's completion.
  const ref = { id: 'lost-1', kind: 'otp' as const, to: RU_PHONE, country: 'RU' };
  await worker.messages.open(ref, Date.now());
  await worker.messages.sent(ref, 'console', undefined, Date.now());
  const queue = new Queue(SMS_QUEUE, { connection: redis, prefix: queuePrefix(prefix) });
  t.teardown(() => queue.close());
  const job = otp('777777');
  const results: string[] = [];
  worker.worker.on('completed', (_job, result) => results.push(String(result)));
  await queue.add('otp', job, { ...smsJobOptions(job), jobId: 'lost-1' });
  await eventually('the expected state', () => results.length === 1, 5000);
  t.same(results, ['already_sent']);
  t.same(worker.printed, []);
});

t.test('a job an earlier version queued with its text is sent as it is', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { redis } = await producer(t, prefix);
  const worker = await startTestSmsWorker(t, { prefix });
  const queue = new Queue(SMS_QUEUE, { connection: redis, prefix: queuePrefix(prefix) });
  t.teardown(() => queue.close());
  const old = {
    kind: 'otp',
    to: RU_PHONE,
    text: 'Your login code is 0042. It expires in 5 minutes.',
    expiresAt: inFiveMinutes(),
  };
  await queue.add('otp', old, { removeOnComplete: true, removeOnFail: true });
  await eventually('the expected state', () => worker.printed.length === 1, 5000);
  t.same(worker.printed, ['SMS to +79123456789: Your login code is 0042. It expires in 5 minutes.\n']);
});

t.test('closing finishes the job in hand before it resolves', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const { queue } = await producer(t, prefix);
  let started = false;
  const slow = standIn('smsru', async () => {
    started = true;
    await new Promise((resolve) => setTimeout(resolve, 400));
  });
  const worker = await startTestSmsWorker(t, { prefix, providers: [slow.provider] });
  await queue.send(otp('777700'));
  await eventually('the expected state', () => started, 5000);
  await worker.worker.close();
  t.equal(slow.sent.length, 1, 'the message went out before close resolved');
});
