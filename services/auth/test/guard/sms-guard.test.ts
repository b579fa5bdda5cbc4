import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Redis } from 'ioredis';
import { buildAuthTestApp, sendCode, verify, type AuthTestContext } from '../auth-test-app.js';
import { guardCommand } from '../../src/cli/sms-guard.js';
import { SmsBudgetCounter } from '../../src/guard/budget.js';
import { rangeGuard } from '../../src/guard/index.js';
import { createTestRedisPrefix, TEST_REDIS_URL, testConfig } from '@refstack/shared/testing';

// Numbers of one range (+7912345 with the last 4 digits dropped) and of another.
const inRange = (n: number) => `+7912345${String(n).padStart(4, '0')}`;
const otherRange = (n: number) => `+7912346${String(n).padStart(4, '0')}`;
// Each send from its own address, so the per-client limits stay out of the way.
const from = (n: number) => `198.51.100.${n % 250}`;

const refusals = (reason: string, count: number) =>
  new RegExp(`sms_guard_refusals_total\\{[^}]*reason="${reason}"[^}]*\\} ${count}\n`);
const metrics = async (ctx: AuthTestContext) => (await ctx.app.inject({ method: 'GET', url: '/metrics' })).body;
const guardOf = (ctx: AuthTestContext, env: Record<string, string> = {}) =>
  rangeGuard(ctx.redis, testConfig({ REDIS_KEY_PREFIX: ctx.prefix, ...env }));

t.test('destination policy: number types and SMS_DENY_PREFIXES are refused before anything is counted', async (t) => {
  const ctx = await buildAuthTestApp(t, { ALLOWED_COUNTRIES: '*', SMS_DENY_PREFIXES: '+7999, +4479' });
  const refused: Array<[string, string]> = [
    ['+7 495 123-45-67', 'fixed_line'],
    ['+7 800 555 35 35', 'toll_free'],
    ['+44 909 879 0000', 'premium_rate'],
    ['+33 8 10 12 34 56', 'shared_cost'],
    ['+44 56 1234 5678', 'voip'],
    ['+7 999 123 45 67', 'denied_range'],
    ['+44 7912 345678', 'denied_range'],
  ];
  for (const [phone, type] of refused) {
    const res = await sendCode(ctx.app, phone);
    t.equal(res.statusCode, 422, phone);
    t.match(res.json(), { code: 'destination_refused', number_type: type }, phone);
  }
  t.equal((await sendCode(ctx.app, '+7 912 345 67 89')).statusCode, 200, 'a mobile number');
  t.equal((await sendCode(ctx.app, '+1 202 555 0143')).statusCode, 200, 'fixed-line-or-mobile (US) is accepted');
  t.equal(ctx.outbox.jobs.length, 2, 'only the accepted numbers were sent to');
  t.equal(
    await ctx.redis.zcard(`${ctx.prefix}:ip:{127.0.0.1}:send-code`),
    2,
    "the client's limit counted the two accepted calls only",
  );
  for (const range of ['+7999123', '+44791234'])
    t.match(await guardOf(ctx).state(range, ctx.clock.now, false), { sendsLastHour: 0 }, `${range}: nothing counted`);
  const body = await metrics(ctx);
  t.match(body, refusals('destination_number_type', 5));
  t.match(body, refusals('destination_deny_prefix', 2));
});

t.test(
  'prefix velocity: past SMS_PREFIX_PER_HOUR a range is refused until its oldest send leaves the hour',
  async (t) => {
    const ctx = await buildAuthTestApp(t, { SMS_PREFIX_PER_HOUR: '3', OTP_RESEND_SECONDS: '60' });
    for (let i = 1; i <= 2; i += 1) t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200);
    // A call the phone's own limit refuses gives its place in the range back.
    t.equal((await sendCode(ctx.app, inRange(1), {}, from(9))).json().code, 'resend_too_soon');
    t.equal((await sendCode(ctx.app, inRange(3), {}, from(3))).statusCode, 200, 'the third place was still free');
    ctx.clock.advance(600);
    const refused = await sendCode(ctx.app, inRange(4), {}, from(4));
    t.equal(refused.statusCode, 429);
    t.match(refused.json(), { code: 'prefix_blocked', retry_after: 3000 });
    t.equal(refused.headers['retry-after'], '3000', 'until the first send of the hour leaves it');
    t.notMatch(refused.body, /\+7912345/, 'the answer names no number or range');
    t.equal((await sendCode(ctx.app, otherRange(1), {}, from(5))).statusCode, 200, 'another range is untouched');
    ctx.clock.advance(3001);
    t.equal((await sendCode(ctx.app, inRange(4), {}, from(6))).statusCode, 200, 'the hour rolled');
    t.equal(ctx.outbox.jobs.length, 5);
    t.ok(
      ctx.logs.lines.some((l) => l['msg'] === 'send-code refused by the sms guard' && l['range'] === '+7912345'),
      'the refusal is logged with its range and reason',
    );
    t.notOk(
      ctx.logs.lines.some((l) => JSON.stringify(l).includes(inRange(4))),
      'but not with the number',
    );
  },
);

t.test('conversion: a range whose codes are not used is blocked for 24 h, and an operator can lift it', async (t) => {
  const ctx = await buildAuthTestApp(t, {
    SMS_PREFIX_PER_HOUR: '100',
    SMS_MIN_CONVERSION: '0.2',
    OTP_TTL_SECONDS: '300',
  });
  // Twenty codes to each range; 3 of one range's are used (15%), 4 of the other's (20%).
  for (let i = 1; i <= 20; i += 1) {
    t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200);
    t.equal((await sendCode(ctx.app, otherRange(i), {}, from(i + 100))).statusCode, 200);
  }
  for (let i = 1; i <= 4; i += 1) {
    if (i <= 3)
      t.equal((await verify(ctx.app, { phone: inRange(i), code: ctx.outbox.lastCodeFor(inRange(i)) })).statusCode, 200);
    t.equal(
      (await verify(ctx.app, { phone: otherRange(i), code: ctx.outbox.lastCodeFor(otherRange(i)) })).statusCode,
      200,
    );
  }
  t.equal(
    (await sendCode(ctx.app, inRange(30), {}, from(30))).statusCode,
    200,
    'codes still within their lifetime say nothing yet',
  );
  ctx.clock.advance(301);
  const blocked = await sendCode(ctx.app, inRange(31), {}, from(31));
  t.equal(blocked.statusCode, 429);
  t.match(blocked.json(), { code: 'prefix_blocked', retry_after: 86_400 });
  t.equal((await sendCode(ctx.app, otherRange(31), {}, from(32))).statusCode, 200, 'the range that converts is not');

  const guard = guardOf(ctx);
  const state = await guard.state(inRange(31), ctx.clock.now, true);
  t.match(state, { range: '+7912345', settledSends: 21, verified: 3, block: { reason: 'low_conversion' } });
  ctx.clock.advance(3600);
  t.equal(
    (await sendCode(ctx.app, inRange(32), {}, from(33))).json().code,
    'prefix_blocked',
    'still blocked an hour on',
  );
  t.ok(await guard.lift('+7912345'));
  t.equal((await sendCode(ctx.app, inRange(32), {}, from(34))).statusCode, 200, 'lifted');
  t.match(await metrics(ctx), refusals('prefix_low_conversion', 2));
});

t.test('conversion: the settled sends are judged by their own verifications only', async (t) => {
  const env = { SMS_PREFIX_PER_HOUR: '100', SMS_MIN_CONVERSION: '0.2', OTP_TTL_SECONDS: '300' };
  const signIn = async (ctx: AuthTestContext, phone: string, client: string) => {
    t.equal((await sendCode(ctx.app, phone, {}, client)).statusCode, 200);
    t.equal((await verify(ctx.app, { phone, code: ctx.outbox.lastCodeFor(phone) }, client)).statusCode, 200);
  };
  await t.test('codes verified while still fresh do not vouch for the settled ones', async (t) => {
    const ctx = await buildAuthTestApp(t, env);
    for (let i = 1; i <= 20; i += 1) t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200);
    ctx.clock.advance(200);
    for (let i = 21; i <= 25; i += 1) await signIn(ctx, inRange(i), from(i));
    ctx.clock.advance(101);
    // The first twenty have settled with none used; the five used ones have not settled yet.
    t.equal((await sendCode(ctx.app, inRange(26), {}, from(26))).json().code, 'prefix_blocked');
  });
  await t.test("a safe-listed number's sign-ins do not vouch for its range", async (t) => {
    const ctx = await buildAuthTestApp(t, env);
    await guardOf(ctx).addSafe(inRange(99));
    for (let i = 1; i <= 20; i += 1) t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200);
    for (let i = 0; i < 5; i += 1) {
      await signIn(ctx, inRange(99), from(200 + i));
      ctx.clock.advance(61);
    }
    ctx.clock.advance(301);
    // Twenty settled sends, none used; the listed number's five settled too, all used.
    t.equal((await sendCode(ctx.app, inRange(26), {}, from(26))).json().code, 'prefix_blocked');
  });
});

t.test('the safe list: no automatic block touches a listed number or prefix', async (t) => {
  const ctx = await buildAuthTestApp(t, { SMS_PREFIX_PER_HOUR: '2' });
  const guard = guardOf(ctx);
  await guard.addSafe('+791234');
  for (let i = 1; i <= 5; i += 1)
    t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200, `safe ${i}`);
  t.match(await guard.state('+7912345', ctx.clock.now, false), { safe: true, sendsLastHour: 0 });
  t.same(await guard.safeList(), ['+791234']);
  t.ok(await guard.removeSafe('+791234'));
  await guard.addSafe(inRange(9));
  for (let i = 6; i <= 7; i += 1) t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200);
  t.equal(
    (await sendCode(ctx.app, inRange(8), {}, from(8))).json().code,
    'prefix_blocked',
    'off the list, counted again',
  );
  t.equal((await sendCode(ctx.app, inRange(9), {}, from(9))).statusCode, 200, 'a listed number in a full range');
});

t.test('budget: sends stop exactly at SMS_DAILY_BUDGET per pool, with a warning at 80% and 100%', async (t) => {
  const ctx = await buildAuthTestApp(t, { ALLOWED_COUNTRIES: 'RU,GB', SMS_DAILY_BUDGET: 'RU:5;*:1' });
  // Mid-day, so that Retry-After is the time left until midnight UTC.
  ctx.clock.now = Date.UTC(2026, 11, 5, 18, 0, 0);
  for (let i = 1; i <= 4; i += 1) t.equal((await sendCode(ctx.app, inRange(i), {}, from(i))).statusCode, 200);
  t.equal(
    (await sendCode(ctx.app, inRange(1), {}, from(9))).json().code,
    'resend_too_soon',
    'refused later, not counted',
  );
  t.equal((await sendCode(ctx.app, inRange(5), {}, from(5))).statusCode, 200, 'so the fifth still goes');
  const spent = await sendCode(ctx.app, inRange(6), {}, from(6));
  t.equal(spent.statusCode, 503);
  t.match(spent.json(), { code: 'budget_exhausted', retry_after: 6 * 3600 });
  t.equal((await sendCode(ctx.app, '+447400123456', {}, from(7))).statusCode, 200, 'another pool');
  t.equal((await sendCode(ctx.app, '+447400123457', {}, from(8))).json().code, 'budget_exhausted');
  t.equal(ctx.outbox.jobs.length, 6);
  const warnings = ctx.logs.lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('sms budget'));
  t.same(
    warnings.map((l) => [l['pool'], l['share']]),
    [
      ['RU', 0.8],
      ['RU', 1],
      ['*', 0.8],
      ['*', 1],
    ],
  );
  const body = await metrics(ctx);
  t.match(body, /sms_budget_used\{[^}]*pool="RU"[^}]*\} 5/);
  t.match(body, /sms_budget_limit\{[^}]*pool="RU"[^}]*\} 5/);
  ctx.clock.now = Date.UTC(2026, 11, 6, 0, 0, 1);
  t.equal((await sendCode(ctx.app, inRange(7), {}, from(10))).statusCode, 200, 'a new UTC day');
});

t.test('budget: two instances sending at once stop exactly at the budget', async (t) => {
  const first = await buildAuthTestApp(t, { SMS_DAILY_BUDGET: '25' });
  const second = await buildAuthTestApp(t, { SMS_DAILY_BUDGET: '25', REDIS_KEY_PREFIX: first.prefix });
  const answers = await Promise.all(
    Array.from({ length: 60 }, (_, i) => sendCode((i % 2 ? first : second).app, inRange(i), {}, from(i))),
  );
  const codes = answers.map((a) => a.statusCode);
  t.equal(codes.filter((c) => c === 200).length, 25, 'exactly the budget');
  t.equal(codes.filter((c) => c === 503).length, 35);
  t.equal(first.outbox.jobs.length + second.outbox.jobs.length, 25);
});

t.test('test numbers: a fixed code, never sent, limited like any other', async (t) => {
  const app = await buildAuthTestApp(t, {
    TEST_PHONES: '+79990000001:424242@2099-12-31, +79990000002:515151@2099-12-31',
    SMS_DAILY_BUDGET: '1',
  });
  const line = app.logs.lines.find((l) => l['msg'] === 'test numbers (TEST_PHONES): fixed codes, never sent');
  t.same(line?.['test_phones'], [
    { phone: '+79990000001', until: '2099-12-31' },
    { phone: '+79990000002', until: '2099-12-31' },
  ]);
  t.notOk(JSON.stringify(app.logs.lines).includes('424242'), 'no code in any log line');

  t.equal((await sendCode(app.app, '+79990000001')).statusCode, 200);
  t.equal(app.outbox.jobs.length, 0, 'nothing queued for a provider');
  t.equal((await sendCode(app.app, inRange(1), {}, from(1))).statusCode, 200, 'nor counted in the budget');
  const signedIn = await verify(app.app, { phone: '+79990000001', code: '424242' });
  t.equal(signedIn.statusCode, 200, 'the fixed code signs in');
  t.equal((await verify(app.app, { phone: '+79990000001', code: '424242' })).json().code, 'otp_expired', 'once');

  t.equal((await sendCode(app.app, '+79990000002', {}, from(2))).statusCode, 200);
  for (let i = 0; i < 4; i += 1) {
    t.equal((await verify(app.app, { phone: '+79990000002', code: '000000' }, from(2))).json().code, 'otp_invalid');
  }
  t.equal(
    (await verify(app.app, { phone: '+79990000002', code: '000000' }, from(2))).json().code,
    'otp_attempts_exceeded',
  );
  t.equal(
    (await verify(app.app, { phone: '+79990000002', code: '515151' }, from(2))).json().code,
    'otp_attempts_exceeded',
    'attempts are limited: the fixed code is no way round them',
  );
});

t.test("the operator's view: pnpm sms guard status, lift and the safe list", async (t) => {
  const env = { SMS_PREFIX_PER_HOUR: '2', SMS_DAILY_BUDGET: 'RU:10' };
  const ctx = await buildAuthTestApp(t, env);
  const config = testConfig({ REDIS_KEY_PREFIX: ctx.prefix, ...env });
  const run = (...args: string[]) => guardCommand(args, config, ctx.redis, false);
  for (let i = 1; i <= 3; i += 1) await sendCode(ctx.app, inRange(i), {}, from(i));
  // The CLI reads the real clock; the app's clock is the real one here too.
  const status = await run('status', inRange(7));
  t.match(status, /range \+7912345 \(numbers \+7912345xxxx\)/);
  t.match(status, /codes sent in the last hour: 2 of 2/);
  t.match(status, /REFUSING: the hourly limit is reached/);
  t.match(status, /budget today \(UTC, resets in \d+ min\): RU 2\/10/);
  const json = JSON.parse(await guardCommand(['status', '+7912345'], config, ctx.redis, true)) as {
    range: { sendsLastHour: number; safe: boolean };
  };
  t.match(json.range, { sendsLastHour: 2, safe: false }, 'a prefix names the range itself');
  t.equal(await run('lift', inRange(7)), 'range +7912345: block lifted, counts forgotten\n');
  t.equal((await sendCode(ctx.app, inRange(4), {}, from(4))).statusCode, 200, 'lifted');
  t.equal(await run('safe', 'add', '+7912345'), '+7912345: on the safe list; no automatic block applies to it\n');
  t.equal(await run('safe', 'list'), '+7912345\n');
  t.match(await run('status', inRange(7)), /safe list: yes/);
  await t.rejects(run('status', 'nonsense'), { message: /neither a phone number nor an E.164 prefix/ });
  await t.rejects(run('frobnicate'), { message: /usage: sms guard status/ });
});

t.test('a budget warning that cannot be recorded does not cost the message its place', async (t) => {
  const prefix = createTestRedisPrefix(t);
  // A Redis user that may do everything but SET: recording a warning fails, counting does not.
  const user = `budget-test-${randomBytes(6).toString('hex')}`;
  const admin = new Redis(TEST_REDIS_URL);
  t.teardown(async () => {
    await admin.call('ACL', 'DELUSER', user);
    await admin.quit();
  });
  await admin.call('ACL', 'SETUSER', user, 'on', 'nopass', '~*', '&*', '+@all', '-set');
  const redis = new Redis(TEST_REDIS_URL, { username: user, maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const told: number[] = [];
  const budget = new SmsBudgetCounter(
    redis,
    prefix,
    { byCountry: { RU: 5 }, other: undefined },
    {
      onThreshold: (_pool, share) => told.push(share),
      onUsage: () => undefined,
    },
  );
  const now = Date.now();
  const allowed: boolean[] = [];
  for (let i = 0; i < 6; i++) allowed.push((await budget.reserve('RU', now)).allowed);
  t.same(allowed, [true, true, true, true, true, false], 'each of the 5 places went to a message, 80% and 100% too');
  t.same(told, [], 'the warnings could not be recorded, so none was told');
  t.same(await budget.state(now), [{ pool: 'RU', limit: 5, used: 5 }]);
});
