import t from 'tap';
import { Value } from 'typebox/value';
import { buildAuthTestApp } from '../auth-test-app.js';
import {
  assertProblem,
  codeWhere,
  inviteRefusingReferral,
  MANY_CODES,
  post,
  SecondSeedSendCodeAnswer,
  SecondSeedSignInAnswer,
  shapeErrors,
} from './seed-kit.js';

const SEED_PHONE = '+79608543017';
const SEND = '/api/v1/auth/send_code/';
const SIGN_IN = '/api/v1/auth/jwt/get_by_phone/';

t.test('send_code: our send-code answer at 200 and never the code, with or without the slash', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_RESEND_SECONDS: '0' });
  for (const url of [SEND, SEND.slice(0, -1)]) {
    const res = await post(ctx, url, { phone: SEED_PHONE });
    t.equal(res.statusCode, 200, url);
    t.ok(Value.Check(SecondSeedSendCodeAnswer, res.json()), shapeErrors(SecondSeedSendCodeAnswer, res.json()));
    t.same(res.json(), { message: 'Code sent', phone: SEED_PHONE, expires_in: 300, resend_in: 0 });
    const code = ctx.outbox.lastCodeFor(SEED_PHONE);
    t.notMatch(res.body, code, 'the code is only in the SMS');
    t.notOk('code' in res.json(), 'no "code" member, unlike the seed');
  }
  t.equal(ctx.outbox.jobs.length, 2, 'one SMS each');
});

t.test("send_code keeps send-code's limits and its input errors", async (t) => {
  const ctx = await buildAuthTestApp(t, { SEND_CODE_IP_PER_HOUR: '3' });
  t.equal((await post(ctx, SEND, { phone: SEED_PHONE })).statusCode, 200);
  assertProblem(t, await post(ctx, SEND, { phone: SEED_PHONE }), 429, 'resend_too_soon', 'resend gap');
  assertProblem(t, await post(ctx, SEND, { phone: 'nope' }), 400, 'invalid_phone', 'bad phone');
  assertProblem(t, await post(ctx, SEND, { phone: 79608543017 }), 400, 'validation_failed', 'phone as a number');
  assertProblem(t, await post(ctx, SEND, {}), 400, 'validation_failed', 'no phone');
  // The address's hourly budget is shared with the v1 path: both count the same calls.
  t.equal((await post(ctx, '/api/v1/auth/send-code', { phone: '+79123456789' })).statusCode, 200);
  assertProblem(t, await post(ctx, SEND, { phone: '+79123456780' }), 429, 'rate_limited', 'address budget');
  t.equal(ctx.outbox.jobs.length, 2);
});

t.test('get_by_phone: signs in, answering access and refresh besides our verify fields', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await post(ctx, SEND, { phone: SEED_PHONE });
  const res = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: ctx.outbox.lastCodeFor(SEED_PHONE) });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.ok(Value.Check(SecondSeedSignInAnswer, body), shapeErrors(SecondSeedSignInAnswer, body));
  t.equal(body.access, body.tokens.access, 'access is the session access token');
  t.equal(body.refresh, body.tokens.refresh, 'refresh is the session refresh token');
  t.match(body, { user: { phone: SEED_PHONE, activated_invite_code: null }, created: true });
  const verified = await post(ctx, '/api/v1/auth/token/verify', { token: body.access });
  t.equal(verified.json().sub, body.user.id);

  ctx.clock.advance(60);
  await post(ctx, '/api/v1/auth/send-code', { phone: SEED_PHONE });
  const again = await post(ctx, SIGN_IN.slice(0, -1), { phone: SEED_PHONE, code: ctx.outbox.lastCodeFor(SEED_PHONE) });
  t.equal(again.statusCode, 200, 'without the trailing slash too');
  t.match(again.json(), { user: { id: body.user.id }, created: false });
});

t.test('get_by_phone: a code sent as a JSON integer, with and without a leading zero', async (t) => {
  const ctx = await buildAuthTestApp(t, MANY_CODES);
  const zero = await codeWhere(ctx, SEED_PHONE, (code) => code.startsWith('0'));
  const lost = Number(zero);
  t.ok(String(lost).length < zero.length, `${zero} as an integer is ${lost}: its leading zero is gone`);
  const padded = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: lost });
  t.equal(padded.statusCode, 200, `${lost} is read as "${zero}"`);

  const plain = await codeWhere(ctx, SEED_PHONE, (code) => !code.startsWith('0'));
  t.equal((await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: Number(plain) })).statusCode, 200, plain);

  // A string is taken as written: its missing zero is not made up, so it is not a code of 6 digits.
  const zero2 = await codeWhere(ctx, SEED_PHONE, (code) => code.startsWith('0'));
  const short = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: String(Number(zero2)) });
  assertProblem(t, short, 400, 'validation_failed', 'a short string');
  t.equal((await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: zero2 })).statusCode, 200, 'the string in full');
});

t.test('get_by_phone: codes that are no code are validation_failed 400 and cost no attempt', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_MAX_ATTEMPTS: '1', VERIFY_IP_FAILED_PER_HOUR: '1' });
  await post(ctx, SEND, { phone: SEED_PHONE });
  for (const code of [1.5, -1, -0.5, 1234567, 1e21, Number.MAX_SAFE_INTEGER + 2, '12a456', '', null, true, [1]]) {
    const res = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code });
    assertProblem(t, res, 400, 'validation_failed', JSON.stringify(code));
  }
  assertProblem(t, await post(ctx, SIGN_IN, { phone: SEED_PHONE }), 400, 'validation_failed', 'no code');
  assertProblem(t, await post(ctx, SIGN_IN, { phone: 'nope', code: '123456' }), 400, 'invalid_phone', 'bad phone');
  const res = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: ctx.outbox.lastCodeFor(SEED_PHONE) });
  t.equal(res.statusCode, 200, 'one attempt allowed, and it is still there');
});

t.test('get_by_phone: wrong, expired and missing codes are 403 with our code', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_MAX_ATTEMPTS: '2' });
  assertProblem(t, await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: 123456 }), 403, 'otp_expired', 'none sent');

  await post(ctx, SEND, { phone: SEED_PHONE });
  const right = ctx.outbox.lastCodeFor(SEED_PHONE);
  const wrong = right === '000000' ? '000001' : '000000';
  const first = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: wrong });
  assertProblem(t, first, 403, 'otp_invalid', 'wrong code');
  t.equal(first.json().attempts_left, 1, 'with attempts_left, as on v1');
  // Burning the code is a limit, not a refusal of the code: it stays 429 with Retry-After.
  const burned = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: wrong });
  assertProblem(t, burned, 429, 'otp_attempts_exceeded', 'burned');
  t.equal(burned.json().attempts_left, 0);

  ctx.clock.advance(61);
  await post(ctx, SEND, { phone: SEED_PHONE });
  const code = ctx.outbox.lastCodeFor(SEED_PHONE);
  ctx.clock.advance(301);
  assertProblem(t, await post(ctx, SIGN_IN, { phone: SEED_PHONE, code }), 403, 'otp_expired', 'expired');

  // The v1 path keeps its own statuses for the same refusals.
  assertProblem(t, await post(ctx, '/api/v1/auth/verify', { phone: SEED_PHONE, code }), 401, 'otp_expired', 'v1');
});

t.test("get_by_phone: the address's failed-verify budget stays a 429 with Retry-After", async (t) => {
  const ctx = await buildAuthTestApp(t, { VERIFY_IP_FAILED_PER_HOUR: '2' });
  for (const phone of ['+79001230001', '+79001230002']) {
    assertProblem(t, await post(ctx, SIGN_IN, { phone, code: 111111 }), 403, 'otp_expired', phone);
  }
  assertProblem(t, await post(ctx, SIGN_IN, { phone: SEED_PHONE, code: 111111 }), 429, 'rate_limited', 'third');
});

t.test('get_by_phone: invited_by_code is the invite; null and empty mean none', async (t) => {
  const ctx = await buildAuthTestApp(t, MANY_CODES);
  for (const [phone, invited_by_code] of [
    ['+79001230001', null],
    ['+79001230002', ''],
    ['+79001230003', '  '],
    ['+79001230004', undefined],
  ] as const) {
    await post(ctx, SEND, { phone });
    const res = await post(ctx, SIGN_IN, { phone, code: ctx.outbox.lastCodeFor(phone), invited_by_code });
    t.equal(res.statusCode, 200, JSON.stringify(invited_by_code));
    t.same(ctx.referral.calls.at(-1), { phone }, `${JSON.stringify(invited_by_code)} sends no invite`);
  }
  const inviter = ctx.referral.users.get('+79001230001');
  if (!inviter) throw new Error('no inviter');
  await post(ctx, SEND, { phone: SEED_PHONE });
  const code = ctx.outbox.lastCodeFor(SEED_PHONE);
  const invited = await post(ctx, SIGN_IN, {
    phone: SEED_PHONE,
    code,
    invited_by_code: ` ${inviter.invite_code.toLowerCase()} `,
  });
  t.equal(invited.statusCode, 200);
  t.same(ctx.referral.calls.at(-1), { phone: SEED_PHONE, invite_code: inviter.invite_code }, 'canonical form');
  t.equal(invited.json().user.activated_invite_code, inviter.invite_code);
  const malformed = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code, invited_by_code: 'not-a-code' });
  assertProblem(t, malformed, 400, 'validation_failed', 'malformed invite');
  assertProblem(t, await post(ctx, SIGN_IN, { phone: SEED_PHONE, code, invited_by_code: 7 }), 400, 'validation_failed');
});

t.test('get_by_phone: every invite refusal is 403 with our code, and the code stays valid', async (t) => {
  const ctx = await buildAuthTestApp(t, {}, { referralClient: await inviteRefusingReferral(t) });
  await post(ctx, SEND, { phone: SEED_PHONE });
  const code = ctx.outbox.lastCodeFor(SEED_PHONE);
  for (const [invite, refusal] of [
    ['NOPE00', 'invite_not_found'],
    ['SELF00', 'invite_self'],
    ['USED00', 'invite_already_activated'],
    ['CYCLE0', 'invite_cycle'],
  ] as const) {
    assertProblem(t, await post(ctx, SIGN_IN, { phone: SEED_PHONE, code, invited_by_code: invite }), 403, refusal);
  }
  // The v1 path keeps the catalog's statuses for the same refusals.
  const v1 = await post(ctx, '/api/v1/auth/verify', { phone: SEED_PHONE, code, invite_code: 'SELF00' });
  assertProblem(t, v1, 422, 'invite_self', 'v1');
  const retry = await post(ctx, SIGN_IN, { phone: SEED_PHONE, code });
  t.equal(retry.statusCode, 200, 'the code was given back each time');
  t.ok(Value.Check(SecondSeedSignInAnswer, retry.json()), shapeErrors(SecondSeedSignInAnswer, retry.json()));
});
