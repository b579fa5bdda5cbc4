import t, { type Test } from 'tap';
import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { TestStack } from '@refstack/shared/testing';

// The second seed's client, replayed on its own paths exactly as it sends its requests: trailing
// slashes, the code as a JSON integer, `invited_by_code`, the same refresh token again and again.
const stack = await TestStack.system(t);

// The seed's own shapes with its JSON types. Extra fields are allowed (our answers are supersets);
// a wrong type is not.
const Phone = Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$' });
const IsoTime = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]00:00)$' });
const Nullable = <S extends TSchema>(schema: S) => Type.Union([schema, Type.Null()]);
const SeedUser = Type.Object({
  id: Type.Integer(),
  invited: Type.Array(Type.Object({ id: Type.Integer(), phone: Phone })),
  phone: Phone,
  invite_code: Type.String({ pattern: '^[A-Z0-9]{6}$' }),
  invited_by_code: Nullable(Type.String()),
  email: Nullable(Type.String()),
  first_name: Nullable(Type.String()),
  last_name: Nullable(Type.String()),
  is_staff: Type.Boolean(),
  is_active: Type.Boolean(),
  date_joined: IsoTime,
  last_login: Nullable(IsoTime),
});
const SeedTokens = Type.Object({ access: Type.String({ minLength: 20 }), refresh: Type.String({ minLength: 20 }) });
const SeedAccess = Type.Object({ access: Type.String({ minLength: 20 }) });

function decodes(t: Test, schema: TSchema, value: unknown, what: string): void {
  const errors = [...Value.Errors(schema, value)].map((e) => `${e.instancePath} ${e.message}`);
  t.same(errors, [], `${what} decodes as the seed's shape`);
}

const bearer = (access: string) => ({ authorization: `Bearer ${access}` });

t.test("the second seed's client flow on its own paths", async (t) => {
  const inviter = await stack.signIn('+79120000050');
  const other = await stack.signIn('+79120000051');
  const inviterCode = String(inviter.json.user.invite_code);
  const otherCode = String(other.json.user.invite_code);
  const phone = '+79608543017';

  const since = stack.sms.length;
  const sent = await stack.post('/api/v1/auth/send_code/', { phone });
  t.equal(sent.status, 200, sent.text);
  const code = await stack.nextLoginCode(phone, since);
  // The phone's own digits are left out: a 6-digit code can be one of their runs by chance.
  const { phone: answeredPhone, ...rest } = sent.json;
  t.equal(answeredPhone, phone);
  t.notOk(JSON.stringify(rest).includes(code), 'the answer does not hold the code; only the SMS does');

  const wrong = await stack.post('/api/v1/auth/jwt/get_by_phone/', { phone, code: (Number(code) + 1) % 10 ** 6 });
  t.equal(wrong.status, 403, 'a wrong code is 403, as the seed answered');
  t.match(wrong.headers.get('content-type'), /application\/problem\+json/);

  const signedIn = await stack.post<{ access: string; refresh: string }>('/api/v1/auth/jwt/get_by_phone/', {
    phone,
    code: Number(code),
    invited_by_code: inviterCode,
  });
  t.equal(signedIn.status, 200, signedIn.text);
  decodes(t, SeedTokens, signedIn.json, 'get_by_phone');
  const { access, refresh } = signedIn.json;

  const me = await stack.request('GET', '/api/v1/users/current_user/', { headers: bearer(access) });
  t.equal(me.status, 200, me.text);
  decodes(t, SeedUser, me.json, 'current_user');
  t.match(me.json, { phone, invited_by_code: inviterCode, invited: [], is_active: true });

  const patched = await stack.request('PATCH', '/api/v1/users/current_user/', {
    headers: bearer(access),
    body: { first_name: 'Ivan', last_name: 'Petrov', email: 'ivan@example.com', invited_by_code: inviterCode, x: 1 },
  });
  t.equal(patched.status, 200, patched.text);
  decodes(t, SeedUser, patched.json, 'PATCH current_user');
  t.match(patched.json, { first_name: 'Ivan', last_name: 'Petrov', email: 'ivan@example.com' });

  const refused = await stack.request('PATCH', '/api/v1/users/current_user', {
    headers: bearer(access),
    body: { first_name: 'Changed', invited_by_code: otherCode },
  });
  t.equal(refused.status, 400, 'a different code is 400');
  t.equal(refused.json.code, 'invite_already_activated');
  const after = await stack.request('GET', '/api/v1/users/current_user', { headers: bearer(access) });
  t.match(after.json, { first_name: 'Ivan', invited_by_code: inviterCode }, 'and nothing of it was written');

  const inviterView = await stack.request('GET', '/api/v1/users/current_user/', {
    headers: bearer(String(inviter.json.tokens.access)),
  });
  decodes(t, SeedUser, inviterView.json, "the inviter's current_user");
  t.same((inviterView.json.invited as unknown[])[0], { id: me.json.id, phone }, 'the inviter sees the invitee first');

  for (const round of [1, 2]) {
    const refreshed = await stack.post<{ access: string }>('/api/v1/auth/jwt/refresh/', { refresh });
    t.equal(refreshed.status, 200, `refresh ${round} with the same token: ${refreshed.text}`);
    decodes(t, SeedAccess, refreshed.json, `refresh ${round}`);
    const verified = await stack.post('/api/v1/auth/jwt/verify/', { token: refreshed.json.access });
    t.equal(verified.status, 200, `the access token of refresh ${round} verifies`);
    t.same(verified.json, {}, 'verify answers {} as the seed did');
  }

  const badVerify = await stack.post('/api/v1/auth/jwt/verify/', { token: `${access}x` });
  t.equal(badVerify.status, 401, 'a bad token does not verify');
  const badToken = await stack.request('GET', '/api/v1/users/current_user/', { headers: bearer(`${access}x`) });
  t.equal(badToken.status, 401, 'a bad token is 401 on current_user');
  t.match(badToken.headers.get('content-type'), /application\/problem\+json/);
});
