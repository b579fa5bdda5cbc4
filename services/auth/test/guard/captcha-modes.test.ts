import t, { type Test } from 'tap';
import { FakeCaptchaServer, testConfig } from '@refstack/shared/testing';
import type { CaptchaProviderName } from '@refstack/shared/contracts';
import { buildAuthTestApp } from '../auth-test-app.js';
import { rangeGuard } from '../../src/guard/index.js';

const from = (n: number) => `198.51.100.${n}`;
const inRange = (n: number) => `+7912345${String(n).padStart(4, '0')}`;

async function setup(t: Test, env: Record<string, string>, provider: CaptchaProviderName = 'turnstile') {
  const fake = new FakeCaptchaServer(provider);
  await fake.start();
  t.teardown(() => fake.stop());
  const ctx = await buildAuthTestApp(t, {
    CAPTCHA_PROVIDER: provider,
    CAPTCHA_SECRET: fake.secret,
    CAPTCHA_BASE_URL: fake.url,
    CAPTCHA_TIMEOUT_MS: '500',
    ...env,
  });
  const send = (phone: string, ip: string, captcha_token?: string, url = '/api/v1/auth/send-code') =>
    ctx.app.inject({
      method: 'POST',
      url,
      payload: captcha_token === undefined ? { phone } : { phone, captcha_token },
      remoteAddress: ip,
    });
  return { fake, ctx, send };
}

t.test('CAPTCHA_MODE=always: no token, a bad or used token are refused before anything is counted', async (t) => {
  for (const provider of ['turnstile', 'smartcaptcha', 'hcaptcha'] as const) {
    await t.test(provider, async (t) => {
      const { fake, ctx, send } = await setup(t, { CAPTCHA_MODE: 'always', SEND_CODE_IP_PER_HOUR: '2' }, provider);
      const missing = await send(inRange(1), from(1));
      t.equal(missing.statusCode, 403);
      t.match(missing.json(), { code: 'captcha_required', captcha_provider: provider });
      t.match((await send(inRange(1), from(1), 'forged')).json(), { code: 'captcha_invalid' });
      const token = fake.issue();
      t.equal((await send(inRange(1), from(1), token)).statusCode, 200);
      t.equal((await send(inRange(2), from(1), token)).json().code, 'captcha_invalid', 'a token works once');
      t.equal(
        (await send(inRange(2), from(1), fake.issue())).statusCode,
        200,
        'refusals did not count against the client',
      );
      t.equal(ctx.outbox.jobs.length, 2);
      t.ok(
        fake.calls.every((call) => Object.values(call.fields).includes(from(1))),
        "the client's address goes to the provider",
      );
      for (const [i, path] of ['/api/v1/auth/send_code/', '/compat/seed1/auth/send-code'].entries()) {
        const seed = await send(inRange(3 + i), from(3), undefined, path);
        t.equal(seed.json().code, 'captcha_required', `${path} asks too`);
        t.equal((await send(inRange(3 + i), from(4), fake.issue(), path)).statusCode, 200, `${path} takes the token`);
      }
    });
  }
});

t.test('a provider that does not answer: refused (503) unless CAPTCHA_FAIL_OPEN=true', async (t) => {
  await t.test('fail closed', async (t) => {
    const { fake, ctx, send } = await setup(t, { CAPTCHA_MODE: 'always' });
    fake.down('error500');
    const res = await send(inRange(1), from(1), fake.issue());
    t.equal(res.statusCode, 503);
    t.match(res.json(), { code: 'service_unavailable', retry_after: 5 });
    fake.down('hang');
    t.equal((await send(inRange(2), from(2), 'any')).statusCode, 503, 'a provider that hangs times out');
    t.equal(ctx.outbox.jobs.length, 0);
    t.ok(ctx.logs.lines.some((l) => l['msg'] === 'captcha provider did not answer'));
  });
  await t.test('fail open', async (t) => {
    const { fake, ctx, send } = await setup(t, { CAPTCHA_MODE: 'always', CAPTCHA_FAIL_OPEN: 'true' });
    fake.down('hang');
    t.equal((await send(inRange(1), from(1), 'any')).statusCode, 200);
    t.equal(ctx.outbox.jobs.length, 1);
    const metrics = (await ctx.app.inject({ method: 'GET', url: '/metrics' })).body;
    t.match(metrics, /captcha_unavailable_total\{[^}]*outcome="let_through"[^}]*\} 1/);
  });
});

t.test('CAPTCHA_MODE=risk asks only when a signal fires', async (t) => {
  const { fake, send } = await setup(t, { CAPTCHA_MODE: 'risk', SEND_CODE_IP_PER_HOUR: '4', SMS_PREFIX_PER_HOUR: '6' });
  t.equal((await send(inRange(1), from(1))).statusCode, 200, 'a quiet client and range: no challenge');
  t.equal((await send(inRange(2), from(1))).statusCode, 200);
  t.equal((await send(inRange(3), from(1))).json().code, 'captcha_required', 'the client made half its hourly calls');
  t.equal((await send(inRange(3), from(1), fake.issue())).statusCode, 200, 'passes with a token');
  t.equal((await send('+79130000001', from(2))).statusCode, 200, 'another client, another range: none');
  // The range now has 3 of its 6.
  t.equal((await send(inRange(4), from(3))).json().code, 'captcha_required', 'the range is half full');
  t.equal((await send(inRange(4), from(3), fake.issue())).statusCode, 200);
});

// Reviewers' automation asks for a test number's code from several devices: that range's real
// numbers must not be asked for a challenge because of it.
t.test("CAPTCHA_MODE=risk: a test number's calls count in no range's risk window", async (t) => {
  const testPhone = inRange(9000);
  const { send } = await setup(t, {
    CAPTCHA_MODE: 'risk',
    SEND_CODE_IP_PER_HOUR: '10',
    SMS_PREFIX_PER_HOUR: '6',
    TEST_PHONES: `${testPhone}:424242@2099-12-31`,
  });
  for (let i = 0; i < 4; i += 1)
    t.not((await send(testPhone, from(10 + i))).json().code, 'captcha_required', `test number call ${i + 1}`);
  // Half the range's hour (3 of 6) goes without a challenge, as if the test number had not asked.
  for (let i = 1; i <= 3; i += 1)
    t.equal((await send(inRange(i), from(20 + i))).statusCode, 200, `the range's real number ${i}: no challenge`);
  t.equal((await send(inRange(4), from(30))).json().code, 'captcha_required', 'its own calls still count');
});

t.test('CAPTCHA_MODE=risk judges a burst call by call, not all against the count from before it', async (t) => {
  const { fake, ctx, send } = await setup(t, {
    CAPTCHA_MODE: 'risk',
    SEND_CODE_IP_PER_HOUR: '30',
    SMS_PREFIX_PER_HOUR: '20',
  });
  const codes = (answers: Array<{ statusCode: number; json(): { code?: string } }>) =>
    answers.map((a) => (a.statusCode === 200 ? 'sent' : (a.json().code ?? String(a.statusCode))));
  const count = (list: string[], what: string) => list.filter((c) => c === what).length;

  // One client, 30 calls at once to 30 ranges: half its hourly calls go without a challenge.
  const fromOne = codes(
    await Promise.all(Array.from({ length: 30 }, (_, i) => send(`+7913${String(i).padStart(3, '0')}0001`, from(1)))),
  );
  t.equal(count(fromOne, 'sent'), 15, `a client's burst: 15 sent (${fromOne.join(' ')})`);
  t.equal(count(fromOne, 'captcha_required'), 15, 'the rest asked for a challenge');

  // One range, 20 calls at once from 20 clients: half the range's hour goes without a challenge.
  const toOne = codes(await Promise.all(Array.from({ length: 20 }, (_, i) => send(inRange(i + 1), from(100 + i)))));
  t.equal(count(toOne, 'sent'), 10, `a range's burst: 10 sent (${toOne.join(' ')})`);
  t.equal(count(toOne, 'captcha_required'), 10, 'the rest asked for a challenge');

  // Refused calls counted for nothing: a solved challenge still gets its code.
  t.equal((await send(inRange(30), from(150), fake.issue())).statusCode, 200);
  t.equal(ctx.outbox.jobs.length, 26);
  // An operator's lift forgets the range's counts, this one too.
  await rangeGuard(ctx.redis, testConfig({ REDIS_KEY_PREFIX: ctx.prefix })).lift('+7912345');
  t.equal((await send(inRange(31), from(151))).statusCode, 200, 'a lifted range asks for nothing');
});

t.test('CAPTCHA_MODE=risk: a call that fails at the challenge step is not counted either', async (t) => {
  const { ctx, send } = await setup(t, { CAPTCHA_MODE: 'risk' });
  // The range's block is not a hash: reading the range fails, as a Redis node failing over would.
  await ctx.redis.set(`${ctx.prefix}:smsguard:range:{+7912399}:block`, 'not a hash');
  const failed = await send('+79123990001', from(9));
  t.ok(failed.statusCode >= 500, `answered ${failed.statusCode}`);
  t.equal(await ctx.redis.zcard(`${ctx.prefix}:smsguard:risk:client:{${from(9)}}`), 0, "not in the client's count");
  t.equal(await ctx.redis.zcard(`${ctx.prefix}:smsguard:risk:range:{+7912399}`), 0, "nor in the range's");
});

t.test('CAPTCHA_MODE=risk: calls refused at the challenge count for nothing afterwards', async (t) => {
  const { ctx, send } = await setup(t, { CAPTCHA_MODE: 'risk', SEND_CODE_IP_PER_HOUR: '4' });
  // A blocked range raises its signal whatever the counts.
  await ctx.redis.hset(
    `${ctx.prefix}:smsguard:range:{+7912345}:block`,
    'until',
    Date.now() + 3_600_000,
    'reason',
    'low_conversion',
  );
  for (let i = 1; i <= 3; i += 1)
    t.equal((await send(inRange(i), from(7))).json().code, 'captcha_required', `a blocked range asks (${i})`);
  t.equal((await send('+79130000001', from(7))).statusCode, 200, 'and the client is not near its limit for it');
});

t.test('CAPTCHA_MODE=risk: a safe-listed range raises no range signal, but a busy client is still asked', async (t) => {
  const { fake, ctx, send } = await setup(t, {
    CAPTCHA_MODE: 'risk',
    SEND_CODE_IP_PER_HOUR: '4',
    SMS_PREFIX_PER_HOUR: '2',
  });
  await rangeGuard(ctx.redis, testConfig({ REDIS_KEY_PREFIX: ctx.prefix })).addSafe('+7912345');
  for (let i = 1; i <= 3; i += 1)
    t.equal((await send(inRange(i), from(10 + i))).statusCode, 200, `a listed range past half its hour: none (${i})`);
  t.equal((await send(inRange(4), from(1))).statusCode, 200);
  t.equal((await send(inRange(5), from(1))).statusCode, 200);
  t.equal(
    (await send(inRange(6), from(1))).json().code,
    'captcha_required',
    'the client made half its hourly calls, to listed numbers too',
  );
  t.equal((await send(inRange(6), from(1), fake.issue())).statusCode, 200, 'passes with a token');
});

t.test('CAPTCHA_MODE=off never asks, whatever the signals', async (t) => {
  const { fake, send } = await setup(t, { CAPTCHA_MODE: 'off', SEND_CODE_IP_PER_HOUR: '4' });
  for (let i = 1; i <= 4; i += 1) t.equal((await send(inRange(i), from(1))).statusCode, 200);
  t.equal(fake.calls.length, 0, 'the provider is never called');
});
