import t from 'tap';
import { Value } from 'typebox/value';
import { generateInviteCode, type Profile } from '@refstack/shared/contracts';
import { buildAuthTestApp, PHONE } from '../auth-test-app.js';
import type { ReferralClient } from '../../src/referral-client.js';
import {
  assertProblem,
  FirstSeedSendCodeAnswer,
  FirstSeedVerifyAnswer,
  MANY_CODES,
  post,
  shapeErrors,
} from './seed-kit.js';

const SEND = '/compat/seed1/auth/send-code';
const VERIFY = '/compat/seed1/auth/verify';

t.test('compat send-code: our answer, its message naming the phone in E.164 in Russian', async (t) => {
  const ctx = await buildAuthTestApp(t);
  // The first seed's client sends the phone without "+".
  const res = await post(ctx, SEND, { phone: '79123456789' });
  t.equal(res.statusCode, 200);
  t.ok(Value.Check(FirstSeedSendCodeAnswer, res.json()), shapeErrors(FirstSeedSendCodeAnswer, res.json()));
  t.same(res.json(), {
    message: 'Код отправлен по номеру: +79123456789',
    phone: PHONE,
    expires_in: 300,
    resend_in: 60,
  });
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/);
  t.notMatch(res.body, ctx.outbox.lastCodeFor(PHONE), 'never the code');
  t.equal((await post(ctx, `${SEND}/`, { phone: '+79001230001' })).statusCode, 200, 'with a trailing slash');
  assertProblem(t, await post(ctx, SEND, { phone: PHONE }), 429, 'resend_too_soon', 'the limits hold');
  assertProblem(t, await post(ctx, SEND, { phone: 'nope' }), 400, 'invalid_phone');
});

t.test("compat verify: the first seed's body; our answer with the user id as a JSON integer", async (t) => {
  const ctx = await buildAuthTestApp(t, MANY_CODES);
  await post(ctx, SEND, { phone: '79123456789' });
  const res = await post(ctx, VERIFY, { phone: '79123456789', code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.ok(Value.Check(FirstSeedVerifyAnswer, body), shapeErrors(FirstSeedVerifyAnswer, body));
  t.match(res.body, /"user":\{"id":1,/, 'the id is a number on the wire');
  t.equal(body.user.id, 1);
  t.match(body, { user: { phone: PHONE }, tokens: { token_type: 'Bearer' }, created: true });
  const verified = await post(ctx, '/api/v1/auth/token/verify', { token: body.tokens.access });
  t.equal(verified.json().sub, '1', 'the token still carries the id as a string, as everywhere');

  const inviter = ctx.referral.users.get(PHONE);
  await post(ctx, SEND, { phone: '+79001230001' });
  const invited = await post(ctx, `${VERIFY}/`, {
    phone: '79001230001',
    code: Number(ctx.outbox.lastCodeFor('+79001230001')),
    invite_code: inviter?.invite_code,
  });
  t.equal(invited.statusCode, 200, 'a code as a number, an invite code, a trailing slash');
  t.ok(Value.Check(FirstSeedVerifyAnswer, invited.json()), shapeErrors(FirstSeedVerifyAnswer, invited.json()));
  t.match(invited.json(), { user: { id: 2, activated_invite_code: inviter?.invite_code }, created: true });
});

t.test('compat verify: errors keep our statuses', async (t) => {
  const ctx = await buildAuthTestApp(t);
  assertProblem(t, await post(ctx, VERIFY, { phone: PHONE, code: '123456' }), 401, 'otp_expired', 'no code');
  await post(ctx, SEND, { phone: PHONE });
  const code = ctx.outbox.lastCodeFor(PHONE);
  const wrong = code === '000000' ? '000001' : '000000';
  assertProblem(t, await post(ctx, VERIFY, { phone: PHONE, code: wrong }), 401, 'otp_invalid', 'wrong');
  assertProblem(t, await post(ctx, VERIFY, { phone: PHONE, code: '12' }), 400, 'validation_failed', 'short');
  const refused = await post(ctx, VERIFY, { phone: PHONE, code, invite_code: 'NOPE00' });
  assertProblem(t, refused, 404, 'invite_not_found', 'unknown invite');
  // Unlike the second seed's path, an empty invite code is malformed here, as on v1.
  assertProblem(t, await post(ctx, VERIFY, { phone: PHONE, code, invite_code: '' }), 400, 'validation_failed');
  t.equal((await post(ctx, VERIFY, { phone: PHONE, code })).statusCode, 200, 'the code survived all of it');
});

t.test('compat verify: an id past 2^53 is refused, never rounded to another number', async (t) => {
  const huge = '9007199254740993';
  const user: Profile = {
    id: huge,
    phone: PHONE,
    invite_code: generateInviteCode(),
    activated_invite_code: null,
    invited_users: [],
    invited_count: 0,
    first_name: null,
    last_name: null,
    email: null,
    created_at: new Date().toISOString(),
  };
  // Stands in for referral's answer: the referral service itself cannot be made to count that far.
  const unused = () => Promise.reject(new Error('not called by a sign-in'));
  const referralClient: ReferralClient = {
    signIn: async () => ({ user, created: false, roles: [] }),
    user: unused,
    changePhone: unused,
    deleteUser: unused,
    exportUser: unused,
    close: async () => undefined,
  };
  const ctx = await buildAuthTestApp(t, MANY_CODES, { referralClient });
  await post(ctx, SEND, { phone: PHONE });
  const res = await post(ctx, VERIFY, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  assertProblem(t, res, 500, 'internal_error');
  t.notMatch(res.body, huge.slice(0, 10), 'no id, rounded or not');
  await post(ctx, SEND, { phone: PHONE });
  const v1 = await post(ctx, '/api/v1/auth/verify', { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(v1.json().user.id, huge, 'v1 keeps it exact, as a string');
});
