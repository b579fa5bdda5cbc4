import t from 'tap';
import { as, buildReferralTestApp, createUser } from '../referral-test-app.js';

t.test('the public card shows no phone or email', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [viewer, other] = [await createUser(ctx), await createUser(ctx)];
  await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: as(other),
    payload: { first_name: 'Ivan', email: 'ivan@example.com' },
  });
  const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/users/${other.id}`, headers: as(viewer) });
  t.equal(res.statusCode, 200);
  t.same(Object.keys(res.json()).sort(), ['created_at', 'first_name', 'id', 'invite_code', 'invited_count']);
  t.notMatch(res.body, other.phone.slice(1));
  t.notMatch(res.body, 'ivan@example.com');
  for (const id of ['999999', 'abc', '0', '-1', '1'.repeat(25), '9223372036854775808', '9999999999999999999']) {
    const missing = await ctx.app.inject({ method: 'GET', url: `/api/v1/users/${id}`, headers: as(viewer) });
    t.equal(missing.statusCode, 404, id);
    t.equal(missing.json().code, 'not_found');
  }
});

t.test('admins see full profiles and may list and search users', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const admin = await createUser(ctx, '+79110000001');
  const plain = await createUser(ctx, '+79220000002');
  const named = await createUser(ctx, '+79330000003');
  await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: as(named),
    payload: { first_name: 'Zoya', last_name: 'Petrova' },
  });

  const forbidden = await ctx.app.inject({ method: 'GET', url: '/api/v1/users', headers: as(plain) });
  t.equal(forbidden.statusCode, 403);
  t.equal(forbidden.json().code, 'forbidden');

  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', admin.id).execute();
  const full = await ctx.app.inject({ method: 'GET', url: `/api/v1/users/${plain.id}`, headers: as(admin) });
  t.match(full.json(), { id: plain.id, phone: plain.phone, invited_users: [] });

  const all = (await ctx.app.inject({ method: 'GET', url: '/api/v1/users?limit=2', headers: as(admin) })).json();
  t.equal(all.items.length, 2);
  t.same(
    all.items.map((u: { id: string }) => u.id),
    [named.id, plain.id],
    'newest first',
  );
  t.notOk('invited_users' in all.items[0]);
  const rest = (
    await ctx.app.inject({ method: 'GET', url: `/api/v1/users?limit=2&cursor=${all.next_cursor}`, headers: as(admin) })
  ).json();
  t.same(
    rest.items.map((u: { id: string }) => u.id),
    [admin.id],
  );
  t.equal(rest.next_cursor, null);

  const search = async (q: string) =>
    (await ctx.app.inject({ method: 'GET', url: `/api/v1/users?search=${encodeURIComponent(q)}`, headers: as(admin) }))
      .json()
      .items.map((u: { id: string }) => u.id);
  t.same(await search('9220000'), [plain.id], 'by phone digits');
  t.same(await search('+7 922 000'), [plain.id], 'by phone in any notation');
  t.same(await search(named.invite_code.toLowerCase()), [named.id], 'by invite code');
  t.same(await search('zoy'), [named.id], 'by first name');
  t.same(await search('petr'), [named.id], 'by last name');
  t.same(await search('%'), [], 'LIKE wildcards are literal');

  await ctx.db.updateTable('users').set({ is_admin: false }).where('id', '=', admin.id).execute();
  const revoked = await ctx.app.inject({ method: 'GET', url: '/api/v1/users', headers: as(admin) });
  t.equal(revoked.statusCode, 403, 'revoking takes effect at once, whatever the token says');
});

t.test('a roles claim in the token does not make an admin', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const token = ctx.issuer.sign({ sub: user.id, phone: user.phone, roles: ['admin'] });
  const res = await ctx.app.inject({
    method: 'GET',
    url: '/api/v1/users',
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(res.statusCode, 403);
  const other = await createUser(ctx);
  const card = await ctx.app.inject({
    method: 'GET',
    url: `/api/v1/users/${other.id}`,
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(card.statusCode, 200);
  t.notOk('phone' in card.json(), 'another user is shown as a public card, not a full profile');
});
