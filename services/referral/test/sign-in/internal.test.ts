import t from 'tap';
import { buildReferralTestApp, createUser, INTERNAL_TOKEN, nextPhone, signInRaw } from '../referral-test-app.js';

t.test('refuses a missing or wrong service credential', async (t) => {
  const ctx = await buildReferralTestApp(t);
  for (const token of [null, '', 'wrong', `${INTERNAL_TOKEN}x`, INTERNAL_TOKEN.slice(0, -1)]) {
    const res = await signInRaw(ctx.app, { phone: nextPhone() }, token);
    t.equal(res.statusCode, 401, JSON.stringify(token));
    t.equal(res.json().code, 'unauthorized');
  }
  t.equal(
    (await ctx.db.selectFrom('users').select(ctx.db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n,
    '0',
    'nothing was written',
  );
});

t.test('creates the user with a fresh invite code on first sign-in, finds it afterwards', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const first = await signInRaw(ctx.app, { phone: '8 912 345-67-89' });
  t.equal(first.statusCode, 200);
  t.match(first.json(), {
    created: true,
    roles: [],
    user: {
      id: String,
      phone: '+79123456789',
      invite_code: /^[A-Z0-9]{6}$/,
      activated_invite_code: null,
      invited_users: [],
      invited_count: 0,
      first_name: null,
      last_name: null,
      email: null,
      created_at: String,
    },
  });
  const again = await signInRaw(ctx.app, { phone: '+79123456789' });
  t.equal(again.json().created, false);
  t.same(again.json().user, first.json().user);
});

t.test('parallel first sign-ins of one phone make one user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const phone = nextPhone();
  const answers = await Promise.all(Array.from({ length: 10 }, () => signInRaw(ctx.app, { phone })));
  t.ok(answers.every((r) => r.statusCode === 200));
  t.equal(answers.filter((r) => r.json().created).length, 1);
  t.equal(new Set(answers.map((r) => r.json().user.id)).size, 1);
});

t.test('invite codes are unique across many users', async (t) => {
  const ctx = await buildReferralTestApp(t);
  await Promise.all(Array.from({ length: 200 }, () => createUser(ctx)));
  const rows = await ctx.db.selectFrom('users').select('invite_code').execute();
  t.equal(rows.length, 200);
  t.equal(new Set(rows.map((r) => r.invite_code)).size, 200);
});

t.test('sign-in with an invite applies it in the same transaction', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const phone = nextPhone();
  const res = await signInRaw(ctx.app, { phone, invite_code: ` ${inviter.invite_code.toLowerCase()} ` });
  t.equal(res.statusCode, 200);
  t.equal(res.json().user.activated_invite_code, inviter.invite_code);
  const row = await ctx.db
    .selectFrom('users')
    .select('invited_count')
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(row.invited_count, 1);
  t.equal(ctx.outbox.notices.length, 1, 'the inviter is told');
  t.match(ctx.outbox.notices[0], {
    inviterId: inviter.id,
    to: inviter.phone,
    inviteCode: inviter.invite_code,
    invitedCount: 1,
    windowSeconds: 3600,
  });
  const back = await signInRaw(ctx.app, { phone: inviter.phone });
  t.match(
    back.json(),
    { created: false, user: { id: inviter.id, invited_users: [phone], invited_count: 1 } },
    "the inviter's next sign-in shows the invitee",
  );
});

t.test('parallel first sign-ins of one phone, with and without an invite, make one user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const phone = nextPhone();
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      signInRaw(ctx.app, i % 2 ? { phone } : { phone, invite_code: inviter.invite_code }),
    ),
  );
  t.ok(
    answers.every((r) => r.statusCode === 200),
    answers.map((r) => r.statusCode).join(' '),
  );
  t.equal(answers.filter((r) => r.json().created).length, 1);
  t.equal(new Set(answers.map((r) => r.json().user.id)).size, 1);
  const row = await ctx.db
    .selectFrom('users')
    .select(['activated_invite_code'])
    .where('phone', '=', answers[0]!.json().user.phone)
    .executeTakeFirstOrThrow();
  t.equal(row.activated_invite_code, inviter.invite_code, 'the invite applied once, whichever sign-in came first');
  const count = await ctx.db
    .selectFrom('users')
    .select('invited_count')
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(count.invited_count, 1);
});

t.test('a refused invite at sign-in writes nothing, not even the user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const phone = nextPhone();
  const refused = await signInRaw(ctx.app, { phone, invite_code: 'ZZZZZZ' });
  t.equal(refused.statusCode, 404);
  t.equal(refused.json().code, 'invite_not_found');
  t.notOk(
    await ctx.db.selectFrom('users').select('id').where('phone', '=', phone).executeTakeFirst(),
    'no user was created',
  );
  const bad = await signInRaw(ctx.app, { phone, invite_code: '!!' });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().code, 'validation_failed');
  const plain = await signInRaw(ctx.app, { phone });
  t.equal(plain.json().created, true, 'signing in without it works');
});

t.test('bad phones are refused', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const res = await signInRaw(ctx.app, { phone: '+7 495 123 45 67' });
  t.equal(res.statusCode, 400);
  t.equal(res.json().code, 'invalid_phone');
});
