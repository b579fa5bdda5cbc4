import t from 'tap';
import { createReferralClient } from '../src/referral-client.js';
import { buildAuthTestApp, INTERNAL_TOKEN, PHONE, sendCode, signIn, verify } from './helpers.js';

const wrongCode = (code: string) => String((Number(code) + 1) % 10_000).padStart(4, '0');

t.test('first success creates the user and opens a session; the code is single-use', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app, '89123456789');
  const code = ctx.outbox.lastCodeFor(PHONE);
  const res = await verify(ctx.app, { phone: '+7 (912) 345-67-89', code });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.equal(body.created, true);
  t.match(body.user, { id: '1', phone: PHONE, invite_code: /^[A-Z0-9]{6}$/ });
  t.match(body.tokens, { access: String, refresh: String, token_type: 'Bearer', expires_in: 900 });
  t.same(ctx.referral.calls, [{ phone: PHONE }]);

  const again = await verify(ctx.app, { phone: PHONE, code });
  t.equal(again.statusCode, 401);
  t.equal(again.json().code, 'otp_expired');

  ctx.clock.advance(61);
  const second = await signIn(ctx);
  t.equal(second.created, false, 'the next sign-in finds the user');
});

t.test("the first seed's body: phone without plus, code as a string or a number", async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_RESEND_SECONDS: '0' });
  await sendCode(ctx.app, '+79346559036');
  const res = await verify(ctx.app, { phone: '79346559036', code: ctx.outbox.lastCodeFor('+79346559036') });
  t.equal(res.statusCode, 200);

  await sendCode(ctx.app, PHONE);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const asNumber = await verify(ctx.app, { phone: PHONE, code: Number(code) });
  t.equal(asNumber.statusCode, 200, `the number ${Number(code)} is read as "${code}"`);
});

t.test('malformed codes and invite codes are validation errors and cost no attempt', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  for (const code of ['12', '12345', 'abcd', '', 12345, -1, 1.5, null, true]) {
    const res = await verify(ctx.app, { phone: PHONE, code });
    t.equal(res.statusCode, 400, JSON.stringify(code));
    t.equal(res.json().code, 'validation_failed');
  }
  const badInvite = await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE), invite_code: 'not-a-code' });
  t.equal(badInvite.statusCode, 400);
  t.match(badInvite.json(), { code: 'validation_failed', errors: [{ field: 'invite_code' }] });
  t.equal((await verify(ctx.app, { phone: 'nope', code: '1234' })).json().code, 'invalid_phone');
  const ok = await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(ok.statusCode, 200, 'the code still works: nothing above counted as a try');
});

t.test('no code requested is otp_expired', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const res = await verify(ctx.app, { phone: PHONE, code: '1234' });
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'otp_expired');
});

t.test('a code expires after OTP_TTL_SECONDS (injected clock)', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  ctx.clock.advance(299);
  const wrong = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  t.equal(wrong.json().code, 'otp_invalid', 'still alive at 299 s');
  ctx.clock.advance(1);
  const res = await verify(ctx.app, { phone: PHONE, code });
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'otp_expired');
});

t.test('five wrong tries burn the code', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  for (let left = 4; left >= 1; left -= 1) {
    const res = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
    t.equal(res.statusCode, 401);
    t.match(res.json(), { code: 'otp_invalid', attempts_left: left });
  }
  const fifth = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  t.equal(fifth.statusCode, 429);
  t.match(fifth.json(), { code: 'otp_attempts_exceeded', attempts_left: 0 });
  const right = await verify(ctx.app, { phone: PHONE, code });
  t.equal(right.statusCode, 429, 'the right code no longer works');
  t.equal(right.json().code, 'otp_attempts_exceeded');
  ctx.clock.advance(61);
  await sendCode(ctx.app);
  t.equal((await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode, 200, 'a new code works');
});

t.test('40 parallel wrong guesses count as at most OTP_MAX_ATTEMPTS tries', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const guesses = Array.from({ length: 40 }, (_, i) => String((Number(code) + 1 + i) % 10_000).padStart(4, '0'));
  const answers = await Promise.all(guesses.map((guess) => verify(ctx.app, { phone: PHONE, code: guess })));
  const codes = answers.map((r) => r.json().code as string);
  t.equal(codes.filter((c) => c === 'otp_invalid').length, 4);
  t.equal(codes.filter((c) => c === 'otp_attempts_exceeded').length, 36);
  const failures = await ctx.redis.zcard(`${ctx.prefix}:otp:{${PHONE}}:fails`);
  t.equal(failures, 5, 'exactly five tries were counted');
  t.equal((await verify(ctx.app, { phone: PHONE, code })).json().code, 'otp_attempts_exceeded');
});

t.test('the daily failure cap stops verify and send-code for the phone', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_MAX_FAILED_PER_DAY: '3', OTP_MAX_ATTEMPTS: '2' });
  await sendCode(ctx.app);
  let code = ctx.outbox.lastCodeFor(PHONE);
  await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  ctx.clock.advance(61);
  await sendCode(ctx.app);
  code = ctx.outbox.lastCodeFor(PHONE);
  t.equal((await verify(ctx.app, { phone: PHONE, code: wrongCode(code) })).json().code, 'otp_invalid');
  const capped = await verify(ctx.app, { phone: PHONE, code });
  t.equal(capped.statusCode, 429);
  t.equal(capped.json().code, 'rate_limited', 'even the right code is refused');
  t.ok(Number(capped.headers['retry-after']) > 23 * 3600);
  ctx.clock.advance(61);
  const send = await sendCode(ctx.app);
  t.equal(send.statusCode, 429);
  t.equal(send.json().code, 'rate_limited');
  ctx.clock.advance(24 * 3600);
  t.equal((await sendCode(ctx.app)).statusCode, 200);
  t.equal((await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode, 200, 'a day later it works again');
});

t.test('a refused invite passes through and the code stays valid for a retry without it', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const refused = await verify(ctx.app, { phone: PHONE, code, invite_code: ' nope00 ' });
  t.equal(refused.statusCode, 404);
  t.equal(refused.json().code, 'invite_not_found');
  t.same(ctx.referral.calls.at(-1), { phone: PHONE, invite_code: 'NOPE00' }, 'the invite code went in canonical form');
  const retry = await verify(ctx.app, { phone: PHONE, code });
  t.equal(retry.statusCode, 200);
});

t.test('referral unreachable: 503 and the code stays valid', async (t) => {
  const down = createReferralClient({ baseUrl: 'http://127.0.0.1:1', internalToken: INTERNAL_TOKEN, timeoutMs: 1000, log: { error: () => undefined } });
  t.teardown(() => down.close());
  const ctx = await buildAuthTestApp(t, {}, { referralClient: down });
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const res = await verify(ctx.app, { phone: PHONE, code });
  t.equal(res.statusCode, 503);
  t.match(res.headers['content-type'], /^application\/problem\+json/);
  t.equal(res.json().code, 'service_unavailable');
  t.ok(res.headers['retry-after']);

  // The same code, verified against a reachable referral service, still signs in.
  const up = createReferralClient({ baseUrl: ctx.referral.url, internalToken: INTERNAL_TOKEN, timeoutMs: 1000, log: { error: () => undefined } });
  t.teardown(() => up.close());
  const { buildApp } = await import('../src/app.js');
  const { testConfig } = await import('@refstack/shared/testing');
  const app2 = await buildApp(testConfig({ REDIS_KEY_PREFIX: ctx.prefix }), { redis: ctx.redis, now: () => ctx.clock.now, sms: ctx.outbox, referral: up });
  t.teardown(() => app2.close());
  t.equal((await verify(app2, { phone: PHONE, code })).statusCode, 200);
});

t.test('a wrong service credential at referral is a 503 for the client, not a leak', async (t) => {
  const ctx = await buildAuthTestApp(t, { INTERNAL_TOKEN: 'not-the-one-referral-knows-xxxxxxxx' });
  await sendCode(ctx.app);
  const res = await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'service_unavailable');
});

t.test('the code appears in no response and no log line', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_LENGTH: '8', LOG_LEVEL: 'trace' });
  const bodies: string[] = [];
  const sent = await sendCode(ctx.app);
  bodies.push(sent.body);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const wrong = String((Number(code) + 1) % 1e8).padStart(8, '0');
  bodies.push((await verify(ctx.app, { phone: PHONE, code: wrong })).body);
  bodies.push((await verify(ctx.app, { phone: PHONE, code })).body);
  bodies.push((await verify(ctx.app, { phone: PHONE, code })).body);
  const standalone = new RegExp(`(?<![0-9])${code}(?![0-9])`);
  for (const body of bodies) t.notMatch(body, standalone);
  t.ok(ctx.logs.raw.length > 0, 'there were log lines');
  t.notMatch(ctx.logs.text(), standalone, 'no log line holds the code');
  t.notMatch(ctx.logs.text(), /login code is/);
});
