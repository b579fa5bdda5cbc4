import t from 'tap';
import { sql } from 'kysely';
import { activate, as, buildReferralTestApp, createUser, recordInviteesAsActivations } from '../referral-test-app.js';
import { SeedUserDetails, shapeErrors, Value } from './seed-shapes.js';

t.test('GET users/current_user answers the seed user details, with and without the trailing slash', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const user = await createUser(ctx);
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  await ctx.db
    .updateTable('users')
    .set({ first_name: 'Анна', email: 'anna@example.com', is_admin: true })
    .where('id', '=', user.id)
    .execute();

  for (const url of ['/api/v1/users/current_user/', '/api/v1/users/current_user']) {
    const res = await ctx.app.inject({ method: 'GET', url, headers: as(user) });
    t.equal(res.statusCode, 200, url);
    t.match(res.headers['content-type'], /^application\/json/);
    const body = res.json();
    t.ok(Value.Check(SeedUserDetails, body), `${url}: ${shapeErrors(SeedUserDetails, body)}`);
    t.same(body, {
      id: Number(user.id),
      invited: [],
      phone: user.phone,
      invite_code: user.invite_code,
      invited_by_code: inviter.invite_code,
      email: 'anna@example.com',
      first_name: 'Анна',
      last_name: null,
      is_staff: true,
      is_active: true,
      date_joined: user.created_at,
      last_login: null,
    });
  }
  const fresh = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/users/current_user/', headers: as(inviter) })
  ).json();
  t.equal(fresh.invited_by_code, null, 'null until a code is activated');
  t.equal(fresh.is_staff, false);
});

t.test('invited lists ids and phones newest first, in the invitee index order, at most 100', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const invitees = [];
  for (let i = 0; i < 3; i += 1) {
    const u = await createUser(ctx);
    t.equal((await activate(ctx.app, u, inviter.invite_code)).statusCode, 200);
    invitees.push(u);
  }
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/current_user/', headers: as(inviter) });
  const body = res.json();
  t.ok(Value.Check(SeedUserDetails, body), shapeErrors(SeedUserDetails, body));
  t.same(
    body.invited,
    invitees.reverse().map((u) => ({ id: Number(u.id), phone: u.phone })),
  );
  const profile = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(inviter) })).json();
  t.same(
    body.invited.map((i: { phone: string }) => i.phone),
    profile.invited_users,
    'the same people in the same order as the profile embeds',
  );
});

t.test('invited stops at the 100 the profile embeds, newest first, and ties on time go by id', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  // Inserted directly (105 sign-ins would be slow); every one at the same instant, so the order of
  // the index's second key, the id, decides.
  await ctx.db
    .insertInto('users')
    .values(
      Array.from({ length: 105 }, (_, i) => ({
        phone: `+7999${String(10_000_000 + i).slice(1)}`,
        invite_code: `Q${String(100_000 + i).slice(1)}`,
        invited_by_id: inviter.id,
        activated_invite_code: inviter.invite_code,
        activated_at: new Date('2026-01-01T00:00:00Z'),
      })),
    )
    .execute();
  await recordInviteesAsActivations(ctx.db, inviter.id);
  const newest = await ctx.db
    .selectFrom('users')
    .select(['id', 'phone'])
    .where('invited_by_id', '=', inviter.id)
    .orderBy('id', 'desc')
    .limit(100)
    .execute();
  const body = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/users/current_user', headers: as(inviter) })
  ).json();
  t.ok(Value.Check(SeedUserDetails, body), shapeErrors(SeedUserDetails, body));
  t.equal(body.invited.length, 100);
  t.same(
    body.invited,
    newest.map((r) => ({ id: Number(r.id), phone: r.phone })),
  );
  const profile = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(inviter) })).json();
  t.same(
    body.invited.map((i: { phone: string }) => i.phone),
    profile.invited_users,
  );
});

t.test('current_user needs a valid access token', async (t) => {
  const ctx = await buildReferralTestApp(t);
  for (const method of ['GET', 'PATCH'] as const) {
    for (const headers of [{}, { authorization: 'Bearer abc.def.ghi' }]) {
      const res = await ctx.app.inject({ method, url: '/api/v1/users/current_user/', headers, payload: {} });
      t.equal(res.statusCode, 401, `${method} ${JSON.stringify(headers)}`);
      t.equal(res.json().code, 'unauthorized');
      t.match(res.headers['content-type'], /^application\/problem\+json/);
    }
  }
});

t.test('an id beyond 2^53 fails the request instead of naming another user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const big = { id: '9007199254740993', phone: '+79990000001' };
  await sql`
    INSERT INTO users (id, phone, invite_code) OVERRIDING SYSTEM VALUE
    VALUES (${big.id}, ${big.phone}, 'BIG001')
  `.execute(ctx.db);
  const res = await ctx.app.inject({
    method: 'GET',
    url: '/api/v1/users/current_user/',
    headers: { authorization: `Bearer ${ctx.issuer.tokenFor(big)}` },
  });
  t.equal(res.statusCode, 500);
  t.equal(res.json().code, 'internal_error');
  t.notMatch(res.body, '9007199254740992', 'no rounded id was sent');
  t.match(ctx.logs.text(), 'user id 9007199254740993 is not a safe integer', 'refused by the id conversion');
});

t.test('users/ and users/{id}/ keep their own behaviour beside the seed path', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [viewer, other] = [await createUser(ctx), await createUser(ctx)];
  for (const url of [`/api/v1/users/${other.id}/`, `/api/v1/users/${other.id}`]) {
    const card = await ctx.app.inject({ method: 'GET', url, headers: as(viewer) });
    t.equal(card.statusCode, 200, url);
    t.same(Object.keys(card.json()).sort(), ['created_at', 'first_name', 'id', 'invite_code', 'invited_count']);
    t.equal(card.json().id, other.id, 'the public card keeps its string id');
  }
  for (const url of ['/api/v1/users/', '/api/v1/users']) {
    const list = await ctx.app.inject({ method: 'GET', url, headers: as(viewer) });
    t.equal(list.statusCode, 403, `${url}: still admins only`);
    t.equal(list.json().code, 'forbidden');
  }
  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', viewer.id).execute();
  const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/', headers: as(viewer) });
  t.equal(list.statusCode, 200);
  t.same(
    list.json().items.map((u: { id: string }) => u.id),
    [other.id, viewer.id],
  );
  const own = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/', headers: as(viewer) });
  t.equal(typeof own.json().id, 'string', 'GET /api/v1/profile keeps its string id');
});
