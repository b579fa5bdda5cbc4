import t from 'tap';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROCESSES } from '@refstack/shared/contracts';
import { type JsonObject, REPO_ROOT, type SignInBody, TestStack } from '@refstack/shared/testing';

// One stack for the whole file: the journeys run one after another against the real processes.
// Inviter notices are coalesced per window; a short one lets the journey see its notice.
const stack = await TestStack.system(t, { INVITE_NOTICE_WINDOW_SECONDS: '2' });

t.test('sign up, then sign in again', async (t) => {
  const first = await stack.signIn('8 (912) 000-00-01');
  t.equal(first.status, 200, first.text);
  t.equal(first.json.created, true);
  t.match(first.json.user, {
    phone: '+79120000001',
    invite_code: /^[A-Z0-9]{6}$/,
    invited_users: [],
    invited_count: 0,
  });
  t.match(first.json.tokens, { token_type: 'Bearer', expires_in: 900 });

  const profile = await stack.request('GET', '/api/v1/profile', {
    headers: { authorization: `Bearer ${first.json.tokens.access}` },
  });
  t.equal(profile.status, 200);
  t.same(profile.json, first.json.user);
  t.notOk(
    stack.lines.some(
      (l) => !l.includes('SMS to') && new RegExp(`(?<![0-9])${first.code}(?![0-9])`).test(l.replace(/"time":\d+/g, '')),
    ),
    'the code is in no other line',
  );
});

t.test('the SMS speaks Russian to Russian numbers, and the language the client asks for', async (t) => {
  const since = stack.sms.length;
  await stack.post('/api/v1/auth/send-code', { phone: '+79120000002' });
  t.match(await stack.nextSms('+79120000002', /./, since), /^Код: \d{6}\. Действует 5 мин$/);
  const english = await stack.request('POST', '/api/v1/auth/send-code', {
    body: { phone: '+79120000003' },
    headers: { 'accept-language': 'en-GB,en;q=0.9' },
  });
  t.equal(english.status, 200);
  const text = await stack.nextSms('+79120000003', /./, since);
  t.match(text, /^Your login code is \d{6}\. It expires in 5 minutes\.$/);
  const code = await stack.nextLoginCode('+79120000003', since);
  t.equal((await stack.post('/api/v1/auth/verify', { phone: '+79120000003', code })).status, 200, 'and it signs in');
});

t.test('invites: sign-up with a code, activation, and the inviter is told by SMS', async (t) => {
  const inviter = await stack.signIn('+79120000010');
  const code = inviter.json.user.invite_code as string;

  const since = stack.sms.length;
  const joined = await stack.signIn('+79120000011', { invite_code: code.toLowerCase() });
  t.equal(joined.status, 200, joined.text);
  t.equal(joined.json.user.activated_invite_code, code);
  t.match(
    await stack.nextSms('+79120000010', new RegExp(code), since),
    new RegExp(`Код приглашения ${code} активировали: \\+1\\. Всего: 1 чел\\.`),
    'the note reaches the inviter at the end of its window',
  );

  const later = await stack.signIn('+79120000012');
  const token = later.json.tokens.access as string;
  const activated = await stack.request('PUT', '/api/v1/profile/invite', {
    headers: { authorization: `Bearer ${token}` },
    body: { invite_code: ` ${code} ` },
  });
  t.equal(activated.status, 200);
  t.same(activated.json, { status: 'activated', activated_invite_code: code });
  const again = await stack.request('PUT', '/api/v1/profile/invite', {
    headers: { authorization: `Bearer ${token}` },
    body: { invite_code: code },
  });
  t.equal(again.status, 200, 'idempotent');
  const cycle = await stack.request('PUT', '/api/v1/profile/invite', {
    headers: { authorization: `Bearer ${inviter.json.tokens.access}` },
    body: { invite_code: later.json.user.invite_code },
  });
  t.equal(cycle.json.code, 'invite_cycle');

  const profile = await stack.request('GET', '/api/v1/profile', {
    headers: { authorization: `Bearer ${inviter.json.tokens.access}` },
  });
  t.same(profile.json.invited_users, ['+79120000012', '+79120000011']);
  t.equal(profile.json.invited_count, 2);

  const refused = await stack.signIn('+79120000013', { invite_code: 'ZZZZZZ' });
  t.equal(refused.status, 404);
  t.equal(refused.json.code, 'invite_not_found');
  const retry = await stack.request('POST', '/api/v1/auth/verify', {
    body: { phone: '+79120000013', code: refused.code },
  });
  t.equal(retry.status, 200, 'the code stayed valid after the refused invite');
  t.equal(retry.json.created, true);
});

t.test('parallel verifies with the right code and an invite: one sign-in, one activation', async (t) => {
  const inviter = await stack.signIn('+79120000060');
  const since = stack.sms.length;
  const sent = await stack.request('POST', '/api/v1/auth/send-code', { body: { phone: '+79120000061' } });
  t.equal(sent.status, 200);
  const code = await stack.nextLoginCode('+79120000061', since);
  const body = { phone: '+79120000061', code, invite_code: inviter.json.user.invite_code };
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => stack.request('POST', '/api/v1/auth/verify', { body })),
  );
  t.same(answers.map((a) => a.status).sort(), [200, 401, 401, 401, 401, 401, 401, 401], 'one winner');
  t.ok(
    answers.filter((a) => a.status === 401).every((a) => a.json.code === 'otp_expired'),
    'the others: otp_expired',
  );
  const profile = await stack.request('GET', '/api/v1/profile', {
    headers: { authorization: `Bearer ${inviter.json.tokens.access}` },
  });
  t.equal(profile.json.invited_count, 1, 'the invite was applied once');
  t.same(profile.json.invited_users, ['+79120000061']);
});

t.test('refresh rotates, reuse revokes, logout ends the session', async (t) => {
  const login = await stack.signIn('+79120000020');
  const first = login.json.tokens;
  const rotated = await stack.request('POST', '/api/v1/auth/refresh', { body: { refresh: first.refresh } });
  t.equal(rotated.status, 200);
  const reused = await stack.request('POST', '/api/v1/auth/refresh', { body: { refresh: first.refresh } });
  t.equal(reused.json.code, 'token_reused');
  const revoked = await stack.request('POST', '/api/v1/auth/refresh', { body: { refresh: rotated.json.refresh } });
  t.equal(revoked.json.code, 'token_invalid', 'the whole session went');

  const fresh = await stack.request('POST', '/api/v1/auth/verify', {
    body: { phone: '+79120000020', code: login.code },
  });
  t.equal(fresh.json.code, 'otp_expired', 'the spent code does not work again');
  const check = await stack.request('POST', '/api/v1/auth/token/verify', { body: { token: rotated.json.access } });
  t.equal(check.json.code, 'token_invalid', 'the reuse ended the session, its access tokens with it');

  const other = await stack.signIn('+79120000021');
  t.equal(other.json.created, true);
  const live = await stack.request('POST', '/api/v1/auth/token/verify', { body: { token: other.json.tokens.access } });
  t.match(live.json, { valid: true, sub: other.json.user.id });
  const out = await stack.request('POST', '/api/v1/auth/logout', { body: { refresh: other.json.tokens.refresh } });
  t.equal(out.status, 204);
  const afterLogout = await stack.request('POST', '/api/v1/auth/refresh', {
    body: { refresh: other.json.tokens.refresh },
  });
  t.equal(afterLogout.json.code, 'token_invalid', 'logged out');

  const jwks = await stack.request<{ keys: unknown[] }>('GET', '/.well-known/jwks.json');
  t.match(jwks.json.keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256' });
});

// The first seed's profile with its JSON types: an integer id, the invitees as phone strings.
const FirstSeedProfile = Type.Object({
  id: Type.Integer(),
  phone: Type.String(),
  invite_code: Type.String(),
  activated_invite_code: Type.Union([Type.String(), Type.Null()]),
  invited_users: Type.Array(Type.String()),
  invited_count: Type.Integer(),
});

t.test("the first seed's client flow on its legacy paths, with its own headers and bodies", async (t) => {
  interface PostmanItem {
    request: {
      method: string;
      header: Array<{ key: string; value: string }>;
      body?: { raw: string };
      url: { path: string[] };
    };
  }
  const collection = JSON.parse(readFileSync(join(REPO_ROOT, 'docs/first-seed.postman_collection.json'), 'utf8')) as {
    item: PostmanItem[];
  };
  const [sendCode, verify, profile, setInvite] = collection.item.map((item) => ({
    method: item.request.method,
    path: `/${item.request.url.path.join('/')}`,
    headers: Object.fromEntries(item.request.header.map((h) => [h.key, h.value])),
    body: item.request.body?.raw,
  }));
  if (!sendCode || !verify || !profile || !setInvite) throw new Error('the collection has four requests');
  // An inviter whose code the legacy client will activate.
  const inviter = await stack.signIn('+79120000030');

  const since = stack.sms.length;
  // Like Postman, keep the cookies the server sets.
  let cookie = '';
  const send = async <T = JsonObject>(req: typeof sendCode, body?: string) => {
    const res = await stack.request<T>(req.method, req.path, {
      headers: { ...req.headers, ...(cookie ? { cookie } : {}) },
      raw: body,
    });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) cookie = setCookie.split(';')[0] ?? '';
    return res;
  };

  const sent = await send(sendCode, sendCode.body);
  t.equal(sent.status, 200, sent.text);
  t.equal(sent.json.phone, '+79346559036');
  t.equal(sent.json.message, 'Код отправлен по номеру: +79346559036', "the seed's own text");
  const code = await stack.nextLoginCode('+79346559036', since);

  // The collection's body, its phone without "+", and its code as a string; only the digits differ.
  const verifyBody = (verify.body ?? '').replace('"1434"', JSON.stringify(code));
  t.match(verifyBody, /"phone": "79346559036"/);
  const verified = await send<SignInBody>(verify, verifyBody);
  t.equal(verified.status, 200, verified.text);
  t.equal(verified.json.user.phone, '+79346559036');
  t.ok(Number.isSafeInteger(verified.json.user.id as unknown), 'the user id is a JSON integer, as the seed sent it');
  t.ok(cookie.startsWith('refstack_access='), 'the login is kept in a cookie, as the seed did');

  const me = await send(profile);
  t.equal(me.status, 200, me.text);
  t.same([...Value.Errors(FirstSeedProfile, me.json)], [], "the profile decodes with the first seed's types");
  t.equal(me.json.phone, '+79346559036');
  t.same(Object.keys(me.json).sort(), [
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

  const activated = await send(
    setInvite,
    (setInvite.body ?? '').replace('"string"', JSON.stringify(inviter.json.user.invite_code)),
  );
  t.equal(activated.status, 200, activated.text);
  t.equal(activated.json.activated_invite_code, inviter.json.user.invite_code);
  t.equal(activated.json.status, 'Код успешно активирован', "the seed's own text");
});

t.test('every answer carries a request id, and every service logs it', async (t) => {
  const res = await stack.request('POST', '/api/v1/auth/send-code', {
    body: { phone: '+79120000040' },
    headers: { 'x-request-id': 'e2e-trace-42' },
  });
  t.equal(res.headers.get('x-request-id'), 'e2e-trace-42');
  await stack.waitForLine((l) => l.startsWith('[auth]') && l.includes('"request_id":"e2e-trace-42"'), 5000, 0);
  t.pass('auth logged the id the client sent');
  // The gateway passes the id on to whichever service answers.
  await stack.request('GET', '/api/v1/profile', { headers: { 'x-request-id': 'e2e-trace-43' } });
  await stack.waitForLine((l) => l.startsWith('[referral]') && l.includes('"request_id":"e2e-trace-43"'), 5000, 0);
  const generated = await stack.request('GET', '/api/v1/profile');
  t.match(generated.headers.get('x-request-id'), /^[0-9a-f-]{36}$/);
  t.equal(generated.status, 401);
});

t.test('internal routes are not reachable through the gateway', async (t) => {
  const res = await stack.request('POST', '/internal/v1/users/sign-in', {
    body: { phone: '+79120000050' },
    headers: { 'x-internal-token': 'dev-internal-token-do-not-use-in-production' },
  });
  t.equal(res.status, 404);
  t.equal(res.json.code, 'not_found');
});

t.test('/docs/json lists every public route with schemas, and no internal one', async (t) => {
  const res = await stack.request('GET', '/docs/json');
  t.equal(res.status, 200);
  const doc = res.json as {
    paths: Record<
      string,
      Record<
        string,
        {
          deprecated?: boolean;
          requestBody?: unknown;
          responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
        }
      >
    >;
    components: { securitySchemes: Record<string, unknown> };
  };
  const routes: Array<[string, string, boolean?]> = [
    ['post', '/api/v1/auth/send-code'],
    ['post', '/api/v1/auth/verify'],
    ['post', '/api/v1/auth/refresh'],
    ['post', '/api/v1/auth/logout'],
    ['post', '/api/v1/auth/token/verify'],
    ['get', '/.well-known/jwks.json'],
    ['get', '/api/v1/profile'],
    ['patch', '/api/v1/profile'],
    ['put', '/api/v1/profile/invite'],
    ['get', '/api/v1/profile/invited'],
    ['get', '/api/v1/users/{id}'],
    ['get', '/api/v1/users'],
    ['post', '/api/v1/users/{id}/block'],
    ['delete', '/api/v1/users/{id}/block'],
    ['get', '/api/v1/auth/sessions'],
    ['delete', '/api/v1/auth/sessions/{id}'],
    ['post', '/api/v1/auth/logout-all'],
    ['post', '/api/v1/profile/phone'],
    ['delete', '/api/v1/profile'],
    ['get', '/api/v1/profile/export'],
    ['post', '/webhooks/sms/{provider}'],
    ['post', '/api/auth/send-code/', true],
    ['post', '/api/auth/verify/', true],
    ['get', '/api/profile/', true],
    ['put', '/api/profile/set-invite/', true],
    ['post', '/api/v1/auth/send_code/', true],
    ['post', '/api/v1/auth/jwt/get_by_phone/', true],
    ['post', '/api/v1/auth/jwt/refresh/', true],
    ['post', '/api/v1/auth/jwt/verify/', true],
    ['get', '/api/v1/users/current_user', true],
    ['patch', '/api/v1/users/current_user', true],
  ];
  for (const [method, path, legacy] of routes) {
    const operation = doc.paths[path]?.[method];
    if (!operation) {
      t.fail(`${method.toUpperCase()} ${path} is missing from /docs/json`);
      continue;
    }
    t.equal(operation.deprecated === true, legacy === true, `${path}: deprecated only if legacy`);
    const responses = Object.entries(operation.responses ?? {});
    t.ok(
      responses.some(([status]) => status.startsWith('2')),
      `${method} ${path}: a success response`,
    );
    if (path !== '/.well-known/jwks.json')
      t.ok(
        responses.some(([status]) => /^[45]/.test(status)),
        `${method} ${path}: its error responses`,
      );
    for (const [status, response] of responses) {
      if (status === '204') continue;
      const schema = Object.values(response.content ?? {})[0]?.schema;
      t.ok(schema, `${method} ${path} ${status} has a response schema`);
    }
  }
  t.notOk(
    Object.keys(doc.paths).some((p) => p.toLowerCase().includes('internal')),
    'no internal path',
  );
  t.ok(doc.components.securitySchemes['bearerAuth'], 'the bearer scheme is described');
  const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m} ${path}`));
  t.same(documented.sort(), routes.map(([m, p]) => `${m} ${p}`).sort(), 'nothing undocumented, nothing extra');
});

t.test('SIGTERM stops all four processes within 10 seconds, exit 0', async (t) => {
  const { code, ms } = await stack.stopSystem();
  t.equal(code, 0);
  t.ok(ms < 10_000, `stopped in ${ms} ms`);
  for (const { name } of PROCESSES) {
    t.ok(
      stack.lines.some((l) => l.startsWith(`[${name}]`) && l.includes('received SIGTERM')),
      `${name} closed gracefully`,
    );
  }
});
