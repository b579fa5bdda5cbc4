import t from 'tap';
import { activate, as, buildReferralTestApp, createUser } from '../referral-test-app.js';

t.test('the profile needs a valid access token', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const nowSeconds = Math.floor(ctx.clock.now / 1000);
  const forged = { sub: '999', phone: user.phone, iss: 'refstack-auth', aud: 'refstack', exp: 9_999_999_999 };
  const forgedPayload = Buffer.from(JSON.stringify(forged)).toString('base64url');
  const cases: Array<[string, Record<string, string>]> = [
    ['no header', {}],
    ['not bearer', { authorization: `Basic ${user.token}` }],
    ['garbage', { authorization: 'Bearer abc.def.ghi' }],
    [
      'wrong audience',
      { authorization: `Bearer ${ctx.issuer.sign({ sub: user.id, phone: user.phone, aud: 'other' })}` },
    ],
    ['wrong issuer', { authorization: `Bearer ${ctx.issuer.sign({ sub: user.id, phone: user.phone, iss: 'evil' })}` }],
    [
      'expired',
      {
        authorization: `Bearer ${ctx.issuer.sign({ sub: user.id, phone: user.phone, exp: nowSeconds - 10 })}`,
      },
    ],
    [
      'alg none',
      {
        authorization: `Bearer ${user.token
          .split('.')
          .slice(0, 2)
          .join('.')
          .replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url'))}.`,
      },
    ],
    [
      'tampered',
      {
        authorization: `Bearer ${user.token.split('.')[0]}.${forgedPayload}.${user.token.split('.')[2]}`,
      },
    ],
    [
      'unknown kid',
      { authorization: `Bearer ${ctx.issuer.sign({ sub: user.id, phone: user.phone }, { header: { kid: 'nope' } })}` },
    ],
    // Signed, but no bigint: it must not reach (and fail) a statement other reads share.
    [
      'subject beyond bigint',
      { authorization: `Bearer ${ctx.issuer.sign({ sub: '9223372036854775808', phone: user.phone })}` },
    ],
    ['subject not a number', { authorization: `Bearer ${ctx.issuer.sign({ sub: 'admin', phone: user.phone })}` }],
  ];
  for (const [name, headers] of cases) {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers });
    t.equal(res.statusCode, 401, name);
    t.equal(res.json().code, 'unauthorized', name);
  }
});

t.test('GET /profile answers the contract shape', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/', headers: as(user) });
  t.equal(res.statusCode, 200);
  t.same(Object.keys(res.json()).sort(), [
    'activated_invite_code',
    'created_at',
    'email',
    'first_name',
    'id',
    'invite_code',
    'invited_count',
    'invited_users',
    'last_name',
    'phone',
  ]);
  t.match(res.json(), {
    id: user.id,
    phone: user.phone,
    invite_code: user.invite_code,
    invited_users: [],
    invited_count: 0,
  });
});

t.test('invited_users lists the phones of invitees, newest first', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const invitees = [];
  for (let i = 0; i < 3; i += 1) {
    const u = await createUser(ctx);
    t.equal((await activate(ctx.app, u, inviter.invite_code)).statusCode, 200);
    invitees.push(u);
  }
  const profile = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(inviter) })).json();
  t.same(profile.invited_users, invitees.map((u) => u.phone).reverse());
  t.equal(profile.invited_count, 3);
});

t.test('PATCH trims names, clears with null and validates', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const patch = (payload: unknown) =>
    ctx.app.inject({ method: 'PATCH', url: '/api/v1/profile', headers: as(user), payload: payload as object });

  const ok = await patch({ first_name: '  Анна ', last_name: 'Smith', email: 'Anna@Example.com' });
  t.equal(ok.statusCode, 200);
  t.match(ok.json(), { first_name: 'Анна', last_name: 'Smith', email: 'Anna@Example.com' });
  const cleared = await patch({ last_name: null });
  t.match(
    cleared.json(),
    { first_name: 'Анна', last_name: null, email: 'Anna@Example.com' },
    'only the named field changed',
  );

  for (const bad of [
    { first_name: '   ' },
    { first_name: 'a\u0000b' },
    { last_name: 'tab\there' },
    { first_name: 'x'.repeat(65) },
    { email: 'not-an-email' },
    { email: 'a@' },
    { phone: '+79990000000' },
    { is_admin: true },
    { first_name: 42 },
  ]) {
    const res = await patch(bad);
    t.equal(res.statusCode, 400, JSON.stringify(bad));
    t.equal(res.json().code, 'validation_failed', JSON.stringify(bad));
    t.ok(Array.isArray(res.json().errors), 'names the field');
  }
  t.equal((await patch({ first_name: 'x'.repeat(64) })).statusCode, 200, '64 characters are fine');
});

t.test('email_taken regardless of case, and freeing an email makes it available', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const a = await createUser(ctx);
  const b = await createUser(ctx);
  t.equal(
    (
      await ctx.app.inject({
        method: 'PATCH',
        url: '/api/v1/profile',
        headers: as(a),
        payload: { email: 'same@example.com' },
      })
    ).statusCode,
    200,
  );
  const taken = await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: as(b),
    payload: { email: 'SAME@Example.COM' },
  });
  t.equal(taken.statusCode, 409);
  t.equal(taken.json().code, 'email_taken');
  const own = await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: as(a),
    payload: { email: 'Same@example.com' },
  });
  t.equal(own.statusCode, 200, 'a user may change the case of their own email');
  await ctx.app.inject({ method: 'PATCH', url: '/api/v1/profile', headers: as(a), payload: { email: null } });
  t.equal(
    (
      await ctx.app.inject({
        method: 'PATCH',
        url: '/api/v1/profile',
        headers: as(b),
        payload: { email: 'same@example.com' },
      })
    ).statusCode,
    200,
  );
});

t.test('a token of a deleted user is unauthorized', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  await ctx.db.deleteFrom('users').where('id', '=', user.id).execute();
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  t.equal(res.statusCode, 401);
});

t.test('413, 415 and malformed JSON are problems', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const big = await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: { ...as(user), 'content-type': 'application/json' },
    payload: JSON.stringify({ first_name: 'x'.repeat(70_000) }),
  });
  t.equal(big.statusCode, 413);
  const text = await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: { ...as(user), 'content-type': 'text/plain' },
    payload: 'hi',
  });
  t.equal(text.statusCode, 415);
  const broken = await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: { ...as(user), 'content-type': 'application/json' },
    payload: '{"first_name":',
  });
  t.equal(broken.statusCode, 400);
  t.equal(broken.json().code, 'malformed_json');
});

t.test('a remembered token stops working the moment it expires', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const token = ctx.issuer.sign({ sub: user.id, phone: user.phone, exp: Math.floor(ctx.clock.now / 1000) + 2 });
  for (let i = 0; i < 3; i += 1)
    t.equal(
      (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: { authorization: `Bearer ${token}` } }))
        .statusCode,
      200,
      'verified once, then remembered',
    );
  ctx.clock.advance(2);
  const late = await ctx.app.inject({
    method: 'GET',
    url: '/api/v1/profile',
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(late.statusCode, 401);
  t.equal(late.json().code, 'unauthorized');
});

// Signed with a published key, so only the missing claim can be why it is refused.
t.test('a token without iss, aud, exp or sub is refused', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  t.equal(
    (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })).statusCode,
    200,
    'the same claims with all four are accepted',
  );
  for (const claim of ['iss', 'aud', 'exp', 'sub']) {
    // JSON drops undefined members: the token is signed without the claim at all.
    const token = ctx.issuer.sign({ sub: user.id, phone: user.phone, [claim]: undefined });
    t.notOk(
      claim in JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')),
      `the token has no ${claim}`,
    );
    const res = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/profile',
      headers: { authorization: `Bearer ${token}` },
    });
    t.equal(res.statusCode, 401, `without ${claim}`);
    t.equal(res.json().code, 'unauthorized', `without ${claim}`);
  }
});

// "1 to 64 characters" counts code points, as the column's char_length does: an emoji is two UTF-16
// units, and a name of 33 was refused when the check counted those.
t.test('names count characters, not UTF-16 units: 64 emoji are fine, 65 are refused', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const routes = ['/api/v1/profile', '/api/v1/users/current_user/'];
  const patch = (url: string, payload: object) => ctx.app.inject({ method: 'PATCH', url, headers: as(user), payload });
  const emoji = (n: number) => '😀'.repeat(n);

  for (const url of routes) {
    for (const [field, name] of [
      ['first_name', emoji(33)],
      ['last_name', ` ${emoji(64)} `],
      ['first_name', `${'𝒜'.repeat(63)}a`],
    ] as const) {
      const res = await patch(url, { [field]: name });
      t.equal(res.statusCode, 200, `${url} ${field}: ${[...name.trim()].length} characters (${res.body})`);
      const stored = await ctx.db.selectFrom('users').select(field).where('id', '=', user.id).executeTakeFirstOrThrow();
      t.equal(stored[field], name.trim(), 'stored as sent, trimmed');
    }
    for (const payload of [{ first_name: emoji(65) }, { last_name: `${'a'.repeat(64)}😀` }]) {
      const res = await patch(url, payload);
      t.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload)}`);
      t.equal(res.json().code, 'validation_failed');
    }
  }
  const profile = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  t.equal(profile.json().last_name, emoji(64), 'the profile shows it');
});
