import t from 'tap';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { loginCodeIn, parseSmsLine, queuePrefix, SMS_QUEUE } from '@refstack/shared/contracts';
import { closeRedis, connectRedis, createSmsQueue } from '@refstack/shared/platform';
import { eventually, LogCapture, testConfig, ThrowawayRedisCluster } from '@refstack/shared/testing';
import { buildApp } from '../../src/app.js';
import { guardCommand } from '../../src/cli/sms-guard.js';
import { OtpStore } from '../../src/otp/otp-store.js';
import { MessageLog } from '../../src/sms/message-log.js';
import { INTERNAL_TOKEN, startReferralStandIn } from '../auth-test-app.js';
import { startTestSmsWorker } from '../sms/sms-test-worker.js';

/**
 * Auth, its SMS worker and BullMQ on a real Redis Cluster of 3 masters and 3 replicas. Every Lua
 * script, queue and multi-key command runs here; one that touched keys of two slots would fail with
 * CROSSSLOT, so this suite is the check that each stays in one slot.
 */
t.test('on a Redis Cluster: sign-in, refresh, the SMS guard, the worker, receipts log and notices', async (t) => {
  const cluster = await ThrowawayRedisCluster.start(t);
  const referral = await startReferralStandIn(t);
  const config = testConfig({
    REDIS_CLUSTER_NODES: cluster.seeds,
    REDIS_KEY_PREFIX: 'cluster-test',
    REFERRAL_URL: referral.url,
    INTERNAL_TOKEN,
    LOG_LEVEL: 'info',
    SMS_PREFIX_PER_HOUR: '3',
    SMS_DAILY_BUDGET: 'RU:100',
    TEST_PHONES: '+79990000001:424242@2099-12-31',
  });
  const api = await connectRedis(config, 'api');
  t.teardown(() => closeRedis(api));
  t.ok(api instanceof Cluster, 'REDIS_CLUSTER_NODES makes a cluster client');

  // The signing key is generated and kept in Redis in development: on the cluster too.
  const app = await buildApp(config, { redis: api, logStream: new LogCapture() });
  t.teardown(() => app.close());

  const { printed, messages, store } = await startTestSmsWorker(t, {
    prefix: config.redisKeyPrefix,
    env: { REDIS_CLUSTER_NODES: cluster.seeds, SMS_DAILY_BUDGET: 'RU:100' },
  });
  t.ok(store instanceof Cluster, "and the worker's");

  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });
  const codeFor = async (phone: string) => {
    await eventually('the SMS', () => printed.some((line) => parseSmsLine(line.trim())?.to === phone), 15_000);
    const line = printed.filter((l) => parseSmsLine(l.trim())?.to === phone).at(-1) ?? '';
    return loginCodeIn(parseSmsLine(line.trim())?.text ?? '') ?? '';
  };

  // Sign-in through the queue and the worker, then refresh, reuse and logout.
  const phone = '+79123456789';
  t.equal((await post('/api/v1/auth/send-code', { phone })).statusCode, 200);
  const signedIn = await post('/api/v1/auth/verify', { phone, code: await codeFor(phone) });
  t.equal(signedIn.statusCode, 200, signedIn.body);
  const { refresh } = signedIn.json().tokens as { refresh: string };
  const rotated = await post('/api/v1/auth/refresh', { refresh });
  t.equal(rotated.statusCode, 200);
  t.equal((await post('/api/v1/auth/refresh', { refresh })).json().code, 'token_reused');
  t.equal((await post('/api/v1/auth/refresh', { refresh: rotated.json().refresh })).json().code, 'token_invalid');
  await eventually('the status is kept', async () => (await messages.list(phone))[0]?.status === 'sent', 5000);

  // Wrong guesses and limits.
  t.equal((await post('/api/v1/auth/send-code', { phone: '+79123456780' })).statusCode, 200);
  const wrong = await post('/api/v1/auth/verify', { phone: '+79123456780', code: '000000' });
  t.equal(wrong.json().code, 'otp_invalid');
  t.equal((await post('/api/v1/auth/send-code', { phone: '+79123456780' })).json().code, 'resend_too_soon');

  // The range's limit (3 an hour) and the budget, counted on the cluster.
  t.equal((await post('/api/v1/auth/send-code', { phone: '+79123456781' })).statusCode, 200);
  t.equal((await post('/api/v1/auth/send-code', { phone: '+79123456782' })).json().code, 'prefix_blocked');
  const status = await guardCommand(['status', '+79123456782'], config, api, false);
  t.match(status, /codes sent in the last hour: 3 of 3/);
  t.match(status, /RU 3\/100/);
  t.match(await guardCommand(['lift', '+7912345'], config, api, false), /block lifted/);
  await guardCommand(['safe', 'add', '+7912345'], config, api, false);
  t.equal((await post('/api/v1/auth/send-code', { phone: '+79123456782' })).statusCode, 200);

  // A test number: the fixed code, nothing sent.
  t.equal((await post('/api/v1/auth/send-code', { phone: '+79990000001' })).statusCode, 200);
  t.equal((await post('/api/v1/auth/verify', { phone: '+79990000001', code: '424242' })).statusCode, 200);

  // Coalesced inviter notices: many activations, one delayed job, one notice.
  const queue = createSmsQueue(api, config.redisKeyPrefix);
  const bull = new Queue(SMS_QUEUE, { connection: api, prefix: queuePrefix(config.redisKeyPrefix) });
  t.teardown(async () => {
    await queue.close();
    await bull.close();
  });
  for (let n = 1; n <= 20; n += 1) {
    await queue.noticeInviter({
      inviterId: '7',
      to: '+79120000007',
      inviteCode: 'AB12CD',
      invitedCount: n,
      windowSeconds: 600,
      now: Date.now(),
    });
  }
  const delayed = await bull.getDelayed();
  t.equal(delayed.length, 1, 'one notice waits for the window');
  await delayed[0]?.promote();
  await eventually('the notice', () => printed.some((l) => l.includes('+79120000007')), 15_000);
  t.match(
    printed.find((l) => l.includes('+79120000007')),
    /AB12CD активировали: \+20\. Всего: 20 чел\./,
  );

  // Forgetting a number (its account deleted or moved): its lists are read and its keys deleted in
  // its own slot, the receipt index entries each in theirs.
  const masters = api instanceof Cluster ? api.nodes('master') : [];
  const naming = async (number: string) =>
    (await Promise.all(masters.map((node) => node.keys(`${config.redisKeyPrefix}:*`))))
      .flat()
      .filter((key) => key.includes(number));
  t.ok(
    (await naming('+79123456780')).some((key) => key.includes(':fails:')),
    'a number with wrong tries',
  );
  // Wait for the worker to finish with its code's message, or it would record it after the
  // forgetting below.
  await eventually(
    'its message is sent',
    async () => (await messages.list('+79123456780'))[0]?.status === 'sent',
    5000,
  );
  for (const number of [phone, '+79123456780']) {
    await new OtpStore(api, config.redisKeyPrefix).forget(number);
    await new MessageLog(api, config.redisKeyPrefix).forget(number);
    t.same(await naming(number), [], `${number} is forgotten`);
  }
});
