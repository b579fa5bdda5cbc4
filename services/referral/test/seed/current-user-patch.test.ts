import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { activate, as, buildReferralTestApp, createUser, type TestUser } from '../referral-test-app.js';
import { SeedUserDetails, shapeErrors, Value } from './seed-shapes.js';

function patch(app: FastifyInstance, user: TestUser, payload: object, url = '/api/v1/users/current_user/') {
  return app.inject({ method: 'PATCH', url, headers: as(user), payload });
}

async function details(app: FastifyInstance, user: TestUser) {
  return (await app.inject({ method: 'GET', url: '/api/v1/users/current_user/', headers: as(user) })).json();
}

t.test('PATCH users/current_user changes names and email as PATCH /profile does, ignoring other keys', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const other = await createUser(ctx);
  for (const url of ['/api/v1/users/current_user/', '/api/v1/users/current_user']) {
    const res = await patch(
      ctx.app,
      user,
      {
        first_name: '  Анна ',
        last_name: 'Smith',
        email: 'Anna@Example.com',
        // What a seed client may send back from its GET: none of it is ours to take.
        id: Number(other.id),
        phone: other.phone,
        invite_code: other.invite_code,
        is_staff: true,
        is_active: false,
        invited: [{ id: 1, phone: '+79990000000' }],
        unknown_key: { nested: true },
      },
      url,
    );
    t.equal(res.statusCode, 200, url);
    const body = res.json();
    t.ok(Value.Check(SeedUserDetails, body), shapeErrors(SeedUserDetails, body));
    t.match(body, {
      id: Number(user.id),
      phone: user.phone,
      invite_code: user.invite_code,
      first_name: 'Анна',
      last_name: 'Smith',
      email: 'Anna@Example.com',
      is_staff: false,
      is_active: true,
      invited: [],
      invited_by_code: null,
    });
  }
  const profile = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })).json();
  t.match(profile, { first_name: 'Анна', last_name: 'Smith', email: 'Anna@Example.com', phone: user.phone });

  const cleared = await patch(ctx.app, user, { last_name: null, invited_by_code: null });
  t.equal(cleared.statusCode, 200);
  t.match(cleared.json(), { first_name: 'Анна', last_name: null, email: 'Anna@Example.com', invited_by_code: null });
  const nothing = await patch(ctx.app, user, {});
  t.equal(nothing.statusCode, 200, 'an empty body changes nothing');
  t.same(nothing.json(), cleared.json());
});

t.test('bad names and emails are 400 validation_failed and change nothing', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  t.equal((await patch(ctx.app, user, { first_name: 'Ivan' })).statusCode, 200);
  const before = await details(ctx.app, user);
  for (const bad of [
    { first_name: '   ' },
    { first_name: 'a\u0000b' },
    { last_name: 'tab\there' },
    { first_name: 'x'.repeat(65) },
    { email: 'not-an-email' },
    { first_name: 42 },
    { last_name: 'Ok', first_name: '' },
    { first_name: 'Fine', invited_by_code: '' },
    { first_name: 'Fine', invited_by_code: 123456 },
  ]) {
    const res = await patch(ctx.app, user, bad);
    t.equal(res.statusCode, 400, JSON.stringify(bad));
    t.equal(res.json().code, 'validation_failed');
    t.equal(res.json().status, 400);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
  }
  t.same(await details(ctx.app, user), before, 'nothing changed');
});

t.test('invited_by_code activates the invite once; the same code again is 200', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const user = await createUser(ctx);
  const res = await patch(ctx.app, user, {
    invited_by_code: ` ${inviter.invite_code.toLowerCase()} `,
    first_name: 'Ivan',
  });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { invited_by_code: inviter.invite_code, first_name: 'Ivan' });
  t.equal(ctx.outbox.notices.length, 1, 'the inviter is told, as after PUT /profile/invite');

  const again = await patch(ctx.app, user, { invited_by_code: inviter.invite_code, first_name: 'Пётр' });
  t.equal(again.statusCode, 200, 'a repeat of the same code');
  t.match(again.json(), { invited_by_code: inviter.invite_code, first_name: 'Пётр' }, 'and its names are applied');
  const viaOwnRoute = await activate(ctx.app, user, inviter.invite_code);
  t.equal(viaOwnRoute.statusCode, 200, 'our own route sees the same activation');
  const absent = await patch(ctx.app, user, { last_name: 'Petrov' });
  t.equal(absent.json().invited_by_code, inviter.invite_code, 'absent leaves it');
  const nulled = await patch(ctx.app, user, { invited_by_code: null });
  t.equal(nulled.json().invited_by_code, inviter.invite_code, 'null leaves it: an activation is never cleared');

  const inviterDetails = await details(ctx.app, inviter);
  t.same(inviterDetails.invited, [{ id: Number(user.id), phone: user.phone }]);
  const row = await ctx.db.selectFrom('users').select('invited_count').where('id', '=', inviter.id).executeTakeFirst();
  t.equal(row?.invited_count, 1, 'the repeats did not count twice');
  t.equal(ctx.outbox.notices.length, 1, 'nor notify twice');
});

t.test('refused codes are 400 with our code, and the names in the same body are not applied', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [a, b, user] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  t.equal((await patch(ctx.app, user, { first_name: 'Before', email: 'before@example.com' })).statusCode, 200);
  const unknownCode = ['ZZZZZZ', 'YYYYYY'].find((c) => ![a, b, user].some((u) => u.invite_code === c)) as string;

  const refusals: Array<[string, string, string]> = [
    ['own code', user.invite_code.toLowerCase(), 'invite_self'],
    ['unknown code', unknownCode, 'invite_not_found'],
    ['malformed code', 'AB CD!', 'validation_failed'],
  ];
  const expectRefused = async (name: string, code: string, expected: string) => {
    const res = await patch(ctx.app, user, {
      first_name: 'After',
      last_name: 'After',
      email: 'after@example.com',
      invited_by_code: code,
    });
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().code, expected, name);
    t.equal(res.json().status, 400, `${name}: the body's status is the one sent`);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    const now = await details(ctx.app, user);
    t.match(now, { first_name: 'Before', last_name: null, email: 'before@example.com' }, `${name}: nothing changed`);
    return now;
  };
  for (const [name, code, expected] of refusals) {
    const now = await expectRefused(name, code, expected);
    t.equal(now.invited_by_code, null, `${name}: nothing activated`);
  }

  t.equal((await patch(ctx.app, user, { invited_by_code: a.invite_code })).statusCode, 200);
  await expectRefused('a different code after one', b.invite_code, 'invite_already_activated');
  t.equal((await details(ctx.app, user)).invited_by_code, a.invite_code, 'the first activation stands');

  // a invited user; a code of someone below a would close a cycle.
  const below = await createUser(ctx);
  t.equal((await activate(ctx.app, below, user.invite_code)).statusCode, 200);
  const res = await patch(ctx.app, a, { first_name: 'Cycle', invited_by_code: below.invite_code });
  t.equal(res.statusCode, 400, 'cycle');
  t.equal(res.json().code, 'invite_cycle');
  t.match(await details(ctx.app, a), { first_name: null, invited_by_code: null }, 'cycle: nothing changed');
});

t.test('a refused email undoes the activation asked for with it: all or nothing', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, holder, user] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  t.equal((await patch(ctx.app, holder, { email: 'taken@example.com' })).statusCode, 200);
  const res = await patch(ctx.app, user, {
    first_name: 'Ivan',
    email: 'TAKEN@example.com',
    invited_by_code: inviter.invite_code,
  });
  t.equal(res.statusCode, 409);
  t.equal(res.json().code, 'email_taken');
  t.match(await details(ctx.app, user), { first_name: null, email: null, invited_by_code: null }, 'nothing applied');
  t.same((await details(ctx.app, inviter)).invited, [], 'the inviter gained nobody');
  const row = await ctx.db.selectFrom('users').select('invited_count').where('id', '=', inviter.id).executeTakeFirst();
  t.equal(row?.invited_count, 0);
  t.equal(ctx.outbox.notices.length, 0, 'and was not told');

  const retry = await patch(ctx.app, user, { first_name: 'Ivan', invited_by_code: inviter.invite_code });
  t.equal(retry.statusCode, 200, 'the same request without the email goes through');
  t.match(retry.json(), { first_name: 'Ivan', invited_by_code: inviter.invite_code });
});
