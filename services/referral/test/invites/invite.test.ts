import t from 'tap';
import { eventually } from '@refstack/shared/testing';
import { activate, buildReferralTestApp, createUser, nextPhone, signInRaw } from '../referral-test-app.js';

t.test('activation by a lower-case code with spaces, then idempotent repeat', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const user = await createUser(ctx);
  const first = await activate(ctx.app, user, `  ${inviter.invite_code.toLowerCase()}\t`);
  t.equal(first.statusCode, 200);
  t.same(first.json(), { status: 'activated', activated_invite_code: inviter.invite_code });
  const again = await activate(ctx.app, user, inviter.invite_code);
  t.equal(again.statusCode, 200);
  t.same(again.json(), first.json());
  const row = await ctx.db
    .selectFrom('users')
    .select('invited_count')
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(row.invited_count, 1, 'the repeat did not count twice');
  t.equal(ctx.outbox.notices.length, 1, 'and did not notify twice');
});

t.test('a second, different code is invite_already_activated', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [a, b, user] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, user, a.invite_code)).statusCode, 200);
  const res = await activate(ctx.app, user, b.invite_code);
  t.equal(res.statusCode, 409);
  t.equal(res.json().code, 'invite_already_activated');
});

t.test('own code, unknown code and malformed code', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const self = await activate(ctx.app, user, user.invite_code.toLowerCase());
  t.equal(self.statusCode, 422);
  t.equal(self.json().code, 'invite_self');
  const unknown = await activate(ctx.app, user, 'ZZZZZZ' === user.invite_code ? 'YYYYYY' : 'ZZZZZZ');
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.json().code, 'invite_not_found');
  for (const bad of ['', 'ABC', 'ABCDEFG', 'AB CD1', '<script>']) {
    const res = await activate(ctx.app, user, bad);
    t.equal(res.statusCode, 400, JSON.stringify(bad));
    t.equal(res.json().code, 'validation_failed');
  }
  const wrongType = await ctx.app.inject({
    method: 'PUT',
    url: '/api/v1/profile/invite',
    headers: { authorization: `Bearer ${user.token}` },
    payload: { invite_code: 123456 },
  });
  t.equal(wrongType.statusCode, 400);
  const profile = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: { authorization: `Bearer ${user.token}` } })
  ).json();
  t.equal(profile.activated_invite_code, null, 'nothing was activated by the refusals');
});

t.test('cycles of length 2 and 3 are refused', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [a, b, c] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, b, a.invite_code)).statusCode, 200, 'b joins under a');
  const two = await activate(ctx.app, a, b.invite_code);
  t.equal(two.statusCode, 422);
  t.equal(two.json().code, 'invite_cycle', 'a cannot join under b');

  t.equal((await activate(ctx.app, c, b.invite_code)).statusCode, 200, 'c joins under b');
  const three = await activate(ctx.app, a, c.invite_code);
  t.equal(three.statusCode, 422);
  t.equal(three.json().code, 'invite_cycle', 'a cannot join under c');
});

t.test('the inviter is notified after commit; a failed enqueue does not undo the activation', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const user = await createUser(ctx);
  ctx.outbox.failing = true;
  const res = await activate(ctx.app, user, inviter.invite_code);
  t.equal(res.statusCode, 200);
  const row = await ctx.db
    .selectFrom('users')
    .select(['invited_by_id'])
    .where('id', '=', user.id)
    .executeTakeFirstOrThrow();
  t.equal(row.invited_by_id, inviter.id);
  t.ok(
    ctx.logs.lines.some((l) => l['msg'] === 'inviter notification not queued'),
    'the failure is logged',
  );

  ctx.outbox.failing = false;
  const second = await createUser(ctx);
  await activate(ctx.app, second, inviter.invite_code);
  t.match(ctx.outbox.notices, [
    { inviterId: inviter.id, to: inviter.phone, inviteCode: inviter.invite_code, invitedCount: 2 },
  ]);
});

t.test("a notice the bus holds up does not hold up the activation's answer past its deadline", async (t) => {
  // The least production allows: a sign-in's activation answers within 1 s (auth waits 2 s).
  const ctx = await buildReferralTestApp(t, { REFERRAL_TIMEOUT_MS: '2000' });
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  // A Redis that stalls: the notice is counted only when the test lets it.
  ctx.outbox.beforeNotice = () => held;
  const waitedOut = (answer: Promise<{ statusCode: number; body: string }>) =>
    Promise.race([answer, new Promise<'still waiting'>((resolve) => setTimeout(resolve, 15_000, 'still waiting'))]);

  const inviter = await createUser(ctx);
  const signIn = await waitedOut(signInRaw(ctx.app, { phone: nextPhone(), invite_code: inviter.invite_code }));
  t.not(signIn, 'still waiting', 'a sign-in with the code is answered while its notice is held');
  if (signIn !== 'still waiting') t.equal(signIn.statusCode, 200, signIn.body);

  const user = await createUser(ctx);
  const activation = await waitedOut(activate(ctx.app, user, inviter.invite_code));
  t.not(activation, 'still waiting', 'so is PUT /profile/invite');
  if (activation !== 'still waiting') t.equal(activation.statusCode, 200, activation.body);

  release();
  await eventually('the held notices to be counted', () => ctx.outbox.notices.length === 2, 10_000);
});
