import t from 'tap';
import { activate, as, buildReferralTestApp, createUser } from '../referral-test-app.js';
import { Seed1Profile, shapeErrors, Value } from './seed-shapes.js';

t.test('GET compat/seed1/profile is our profile with an integer id, with and without the slash', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const invitees = [await createUser(ctx), await createUser(ctx)];
  for (const invitee of invitees) t.equal((await activate(ctx.app, invitee, user.invite_code)).statusCode, 200);
  await ctx.app.inject({ method: 'PATCH', url: '/api/v1/profile', headers: as(user), payload: { first_name: 'Анна' } });

  const ours = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  t.equal(typeof ours.json().id, 'string', 'our own profile keeps its string id');
  for (const url of ['/compat/seed1/profile', '/compat/seed1/profile/']) {
    const res = await ctx.app.inject({ method: 'GET', url, headers: as(user) });
    t.equal(res.statusCode, 200, url);
    const body = res.json();
    t.ok(Value.Check(Seed1Profile, body), `${url}: ${shapeErrors(Seed1Profile, body)}`);
    t.same(body, { ...ours.json(), id: Number(user.id) }, 'otherwise exactly our answer');
    t.same(Object.keys(body), Object.keys(ours.json()), 'in the same field order');
    t.same(body.invited_users, invitees.map((u) => u.phone).reverse(), 'invited_users stays a list of phones');
  }
  const none = await ctx.app.inject({ method: 'GET', url: '/compat/seed1/profile/' });
  t.equal(none.statusCode, 401);
  t.equal(none.json().code, 'unauthorized');
});

t.test('PUT compat/seed1/profile/set-invite activates as PUT /profile/invite, with the Russian status', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, other, user] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  const put = (invite_code: unknown, url = '/compat/seed1/profile/set-invite/') =>
    ctx.app.inject({ method: 'PUT', url, headers: as(user), payload: { invite_code } });

  const first = await put(` ${inviter.invite_code.toLowerCase()}`);
  t.equal(first.statusCode, 200);
  t.same(first.json(), { status: 'Код успешно активирован', activated_invite_code: inviter.invite_code });
  t.match(first.headers['content-type'], /^application\/json; charset=utf-8/);
  const again = await put(inviter.invite_code, '/compat/seed1/profile/set-invite');
  t.equal(again.statusCode, 200, 'a repeat, without the slash');
  t.same(again.json(), first.json());
  t.equal(ctx.outbox.notices.length, 1, 'one activation, one notice');

  const refusals: Array<[unknown, number, string]> = [
    [other.invite_code, 409, 'invite_already_activated'],
    ['ABC', 400, 'validation_failed'],
    [123456, 400, 'validation_failed'],
  ];
  for (const [code, status, expected] of refusals) {
    const res = await put(code);
    t.equal(res.statusCode, status, `${JSON.stringify(code)}: our status, as on our own path`);
    t.equal(res.json().code, expected);
  }
  const fresh = await createUser(ctx);
  const own = await ctx.app.inject({
    method: 'PUT',
    url: '/compat/seed1/profile/set-invite/',
    headers: as(fresh),
    payload: { invite_code: fresh.invite_code },
  });
  t.equal(own.statusCode, 422);
  t.equal(own.json().code, 'invite_self');

  const profile = (await ctx.app.inject({ method: 'GET', url: '/compat/seed1/profile/', headers: as(user) })).json();
  t.equal(profile.activated_invite_code, inviter.invite_code);
  const none = await ctx.app.inject({
    method: 'PUT',
    url: '/compat/seed1/profile/set-invite/',
    payload: { invite_code: inviter.invite_code },
  });
  t.equal(none.statusCode, 401);
});
