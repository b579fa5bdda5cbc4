import t from 'tap';
import { TestStack } from '@refstack/shared/testing';
import { ThrowawayPostgres, ThrowawayRedis } from './throwaway-stores.js';

t.test('the referral service down while verify runs: 503, and the code is still valid after', async (t) => {
  const stack = await TestStack.create(t);
  await stack.startAll();
  const phone = '+79126660001';
  t.equal((await stack.post('/api/v1/auth/send-code', { phone })).status, 200);
  await stack.waitFor(() => stack.smsCode(phone) !== undefined, 10_000, 'the SMS');
  const code = stack.smsCode(phone);

  t.same(await stack.stop('referral'), { code: 0, signal: null }, 'referral stopped cleanly');
  const during = await stack.post('/api/v1/auth/verify', { phone, code });
  t.equal(during.status, 503);
  t.equal(during.json['code'], 'service_unavailable');
  // The stores' timeouts are 2 s; a hang would be the client's own limit (tens of seconds).
  t.ok(during.ms < 10_000, `answered in ${during.ms} ms, no hang`);

  stack.start('referral');
  await stack.waitFor(
    async () => (await fetch(`${stack.url}/health/ready`)).status === 200,
    20_000,
    'referral to be back',
  );
  const after = await stack.post('/api/v1/auth/verify', { phone, code });
  t.equal(after.status, 200, 'the same code signs in once referral is back');
  t.equal(after.json['created'], true);
});

t.test('Redis restarted during logins: 503 meanwhile, recovery by itself, no queued SMS lost', async (t) => {
  const redis = await ThrowawayRedis.start(t);
  const stack = await TestStack.create(t, { REDIS_URL: redis.url });
  await stack.startAll();

  // Messages accepted while the worker is away wait in Redis (append-only file on).
  await stack.stop('sms-worker');
  const queued = ['+79126660011', '+79126660012', '+79126660013'];
  for (const phone of queued) t.equal((await stack.post('/api/v1/auth/send-code', { phone })).status, 200);

  await redis.stop('SIGKILL');
  const during = await stack.post('/api/v1/auth/send-code', { phone: '+79126660020' });
  t.equal(during.status, 503, 'send-code during the outage');
  t.equal(during.json['code'], 'service_unavailable');
  // The stores' timeouts are 2 s; a hang would be the client's own limit (tens of seconds).
  t.ok(during.ms < 10_000, `answered in ${during.ms} ms, no hang`);
  const verifyDuring = await stack.post('/api/v1/auth/verify', { phone: '+79126660020', code: '123456' });
  t.equal(verifyDuring.status, 503, 'verify during the outage');

  await redis.up();
  const recovered = await stack.waitFor(
    async () => (await stack.post('/api/v1/auth/send-code', { phone: '+79126660021' })).status === 200,
    15_000,
    'send-code to work again',
  );
  t.ok(recovered < 15_000, `recovered ${recovered} ms after Redis came back`);

  stack.start('sms-worker');
  for (const phone of queued) {
    await stack.waitFor(() => stack.smsCode(phone) !== undefined, 15_000, `the SMS to ${phone}`);
  }
  t.pass('every message accepted before the outage was printed');
  const code = stack.smsCode('+79126660011');
  t.equal((await stack.post('/api/v1/auth/verify', { phone: '+79126660011', code })).status, 200, 'and its code works');
  t.notOk(
    stack.lines.some(
      (l) => /"level":(50|60)/.test(l) && !l.includes('ECONNREFUSED') && !l.includes('Connection is closed'),
    ),
    'no unexpected error lines',
  );
});

t.test(
  'Postgres restarted: profile and activation answer 503 meanwhile, recover after, nothing half-applied',
  async (t) => {
    const postgres = await ThrowawayPostgres.start(t);
    const stack = await TestStack.create(t, { DATABASE_URL: postgres.url });
    await stack.startAll();
    const signIn = async (phone: string) => {
      await stack.post('/api/v1/auth/send-code', { phone });
      await stack.waitFor(() => stack.smsCode(phone) !== undefined, 10_000, `the SMS to ${phone}`);
      return (await stack.post('/api/v1/auth/verify', { phone, code: stack.smsCode(phone) })).json as {
        user: { invite_code: string };
        tokens: { access: string };
      };
    };
    const inviter = await signIn('+79126660031');
    const users = await Promise.all(['+79126660032', '+79126660033', '+79126660034', '+79126660035'].map(signIn));
    const activate = (user: { tokens: { access: string } }) =>
      fetch(`${stack.url}/api/v1/profile/invite`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${user.tokens.access}`, 'content-type': 'application/json' },
        body: JSON.stringify({ invite_code: inviter.user.invite_code }),
      });
    const profile = () =>
      fetch(`${stack.url}/api/v1/profile`, { headers: { authorization: `Bearer ${inviter.tokens.access}` } });

    t.equal((await activate(users[0]!)).status, 200);
    postgres.stop('immediate');
    const started = Date.now();
    const [p, a] = await Promise.all([profile(), activate(users[1]!)]);
    t.equal(p.status, 503, 'profile during the outage');
    t.equal(a.status, 503, 'activation during the outage');
    t.equal(((await p.json()) as { code: string }).code, 'service_unavailable');
    t.ok(Date.now() - started < 15_000, 'no hang beyond the configured timeouts');

    postgres.up();
    const recovered = await stack.waitFor(
      async () => (await profile()).status === 200,
      20_000,
      'the profile to answer again',
    );
    t.ok(recovered < 20_000, `recovered ${recovered} ms after Postgres came back`);
    for (const user of users.slice(1)) t.equal((await activate(user)).status, 200);
    const body = (await (await profile()).json()) as { invited_count: number; invited_users: string[] };
    t.equal(body.invited_count, 4, 'the count matches the relations: nothing half-applied');
    t.equal(body.invited_users.length, 4);
  },
);

t.test('an SMS worker killed with SIGKILL mid-job: the job is retried and the SMS printed', async (t) => {
  const stack = await TestStack.create(t);
  await stack.startAll();
  await stack.stop('sms-worker');
  const slow = stack.startExtra('slow-worker', [
    '--conditions=@refstack/source',
    '--import',
    'tsx',
    'e2e/faults/slow-worker.ts',
  ]);
  await stack.waitFor(() => stack.lines.includes('[slow-worker] slow worker ready'), 20_000, 'the slow worker');

  const phone = '+79126660041';
  t.equal((await stack.post('/api/v1/auth/send-code', { phone })).status, 200);
  await stack.waitFor(() => stack.lines.includes(`[slow-worker] sending to ${phone}`), 10_000, 'the job to be in hand');
  const killed = new Promise((resolve) => slow.once('exit', resolve));
  slow.kill('SIGKILL');
  await killed;

  stack.start('sms-worker');
  const ms = await stack.waitFor(() => stack.smsCode(phone) !== undefined, 30_000, 'the retried SMS');
  t.pass(`printed by the restarted worker ${ms} ms later (at-least-once delivery)`);
  const code = stack.smsCode(phone);
  t.equal((await stack.post('/api/v1/auth/verify', { phone, code })).status, 200, 'and the code works');
});

t.test('each process sent SIGTERM under load: requests in flight complete, no client sees a reset', async (t) => {
  const stack = await TestStack.create(t, { SEND_CODE_IP_PER_HOUR: '100000' });
  await stack.startAll();
  const phone = '+79126660051';
  await stack.post('/api/v1/auth/send-code', { phone });
  await stack.waitFor(() => stack.smsCode(phone) !== undefined, 10_000, 'the SMS');
  const { tokens } = (await stack.post('/api/v1/auth/verify', { phone, code: stack.smsCode(phone) })).json as {
    tokens: { access: string };
  };

  /**
   * Twenty keep-alive clients through the gateway, half reading the profile (referral), half the
   * JWKS (auth), until told to stop. Allowed: an answer, a 503 problem while an upstream is away,
   * a refused connection while the gateway itself is away. Anything else is counted as a failure.
   */
  async function underLoad(stop: () => Promise<void>): Promise<Record<string, number>> {
    const outcomes: Record<string, number> = {};
    const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
    let running = true;
    const loops = Array.from({ length: 20 }, async (_, i) => {
      while (running) {
        try {
          const res =
            i % 2 === 0
              ? await fetch(`${stack.url}/api/v1/profile`, { headers: { authorization: `Bearer ${tokens.access}` } })
              : await fetch(`${stack.url}/.well-known/jwks.json`);
          const body = (await res.json()) as { code?: string };
          count(res.status === 200 ? '200' : `${res.status} ${body.code ?? ''}`);
        } catch (error) {
          count((error as { cause?: { code?: string } }).cause?.code ?? String(error));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    });
    await stack.waitFor(() => (outcomes['200'] ?? 0) > 50, 30_000, 'traffic to flow');
    await stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    running = false;
    await Promise.all(loops);
    return outcomes;
  }

  for (const name of ['referral', 'auth'] as const) {
    let exit: unknown;
    let ms = 0;
    const outcomes = await underLoad(async () => {
      const started = Date.now();
      exit = await stack.stop(name);
      ms = Date.now() - started;
    });
    t.same(exit, { code: 0, signal: null }, `${name} exited cleanly in ${ms} ms`);
    t.ok(ms < 10_000, `${name} stopped within the 10 s budget`);
    const failures = Object.keys(outcomes).filter((key) => key !== '200' && key !== '503 service_unavailable');
    t.same(failures, [], `${name} stopped: ${JSON.stringify(outcomes)}`);
    t.ok((outcomes['200'] ?? 0) > 50, 'traffic flowed before the stop');
    stack.start(name);
    await stack.waitFor(
      async () => (await fetch(`${stack.url}/health/ready`)).status === 200,
      20_000,
      `${name} to be back`,
    );
  }

  let exit: unknown;
  const outcomes = await underLoad(async () => {
    exit = await stack.stop('gateway');
  });
  t.same(exit, { code: 0, signal: null }, 'the gateway exited cleanly');
  const failures = Object.keys(outcomes).filter((key) => key !== '200' && key !== 'ECONNREFUSED');
  t.same(failures, [], `gateway stopped: ${JSON.stringify(outcomes)}`);

  // The worker finishes the message in hand before it exits; what it had not taken waits in Redis.
  stack.start('gateway');
  await stack.waitFor(
    async () => (await fetch(`${stack.url}/health/ready`).catch(() => undefined))?.status === 200,
    20_000,
    'the gateway to be back',
  );
  const phones = Array.from({ length: 30 }, (_, i) => `+791266601${String(i).padStart(2, '0')}`);
  const sends = phones.map((p) => stack.post('/api/v1/auth/send-code', { phone: p }));
  const worker = await stack.stop('sms-worker');
  t.same(worker, { code: 0, signal: null }, 'the SMS worker exited cleanly');
  t.ok(
    (await Promise.all(sends)).every((r) => r.status === 200),
    'every send-code was accepted',
  );
  stack.start('sms-worker');
  for (const p of phones) await stack.waitFor(() => stack.smsCode(p) !== undefined, 20_000, `the SMS to ${p}`);
  t.pass('every accepted message was printed');
});
