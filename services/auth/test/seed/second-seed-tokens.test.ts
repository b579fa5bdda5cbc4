import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { Value } from 'typebox/value';
import { TestTokenIssuer } from '@refstack/shared/testing';
import { buildAuthTestApp, signIn, type AuthTestContext } from '../auth-test-app.js';
import { assertProblem, post, SecondSeedRefreshAnswer, SecondSeedVerifyAnswer, shapeErrors } from './seed-kit.js';

const SEED_REFRESH = '/api/v1/auth/jwt/refresh/';
const SEED_VERIFY = '/api/v1/auth/jwt/verify/';

const seedRefresh = (ctx: AuthTestContext, refresh: string) => post(ctx, SEED_REFRESH, { refresh });
const v1Refresh = (ctx: AuthTestContext, refresh: string) => post(ctx, '/api/v1/auth/refresh', { refresh });

t.test('jwt/refresh: the same refresh token gives a new access token again and again', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens, user } = await signIn(ctx);
  const seen = new Set<string>([tokens.access]);
  for (const url of [SEED_REFRESH, SEED_REFRESH, SEED_REFRESH.slice(0, -1), SEED_REFRESH]) {
    const res = await post(ctx, url, { refresh: tokens.refresh });
    t.equal(res.statusCode, 200, url);
    const body = res.json();
    t.ok(Value.Check(SecondSeedRefreshAnswer, body), shapeErrors(SecondSeedRefreshAnswer, body));
    t.notOk('refresh' in body, 'no new refresh token: the seed client keeps its own');
    t.equal(body.expires_in, 900);
    t.notOk(seen.has(body.access), 'a fresh access token each time');
    seen.add(body.access);
    const verified = await post(ctx, '/api/v1/auth/token/verify', { token: body.access });
    t.same(verified.json(), { valid: true, sub: user.id, exp: verified.json().exp }, 'for the same user');
  }
  // The token is still the session's current one, so the v1 path rotates it as usual.
  const rotated = await v1Refresh(ctx, tokens.refresh);
  t.equal(rotated.statusCode, 200);
  t.not(rotated.json().refresh, tokens.refresh);
});

t.test('jwt/refresh: after logout the refresh token is 401', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  t.equal((await seedRefresh(ctx, tokens.refresh)).statusCode, 200);
  t.equal((await post(ctx, '/api/v1/auth/logout', { refresh: tokens.refresh })).statusCode, 204);
  assertProblem(t, await seedRefresh(ctx, tokens.refresh), 401, 'token_invalid', 'after logout');
});

t.test('jwt/refresh: a token spent by a v1 rotation is reuse and kills the whole family', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  t.equal((await seedRefresh(ctx, tokens.refresh)).statusCode, 200);
  const rotated = await v1Refresh(ctx, tokens.refresh);
  t.equal(rotated.statusCode, 200);
  const newest = rotated.json().refresh as string;

  const reused = await seedRefresh(ctx, tokens.refresh);
  assertProblem(t, reused, 401, 'token_reused', 'the spent token on the seed path');
  // The same problem v1 answers for reuse, shown with another session.
  const other = (await signIn(ctx, '+79001230001')).tokens.refresh;
  await v1Refresh(ctx, other);
  t.same(reused.json(), (await v1Refresh(ctx, other)).json(), 'the same problem as v1 reuse');
  assertProblem(t, await v1Refresh(ctx, newest), 401, 'token_invalid', 'the new v1 token died with the family');
  assertProblem(t, await seedRefresh(ctx, newest), 401, 'token_invalid', 'on the seed path too');
  const keys = await ctx.redis.keys(`${ctx.prefix}:session:{${tokens.refresh.split('.')[0] ?? ''}}*`);
  t.same(keys, [], 'nothing of the session is left');
});

t.test('jwt/refresh: parallel calls with one token all succeed and rotate nothing', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const answers = await Promise.all(Array.from({ length: 10 }, () => seedRefresh(ctx, tokens.refresh)));
  t.same(
    answers.map((r) => r.statusCode),
    Array.from({ length: 10 }, () => 200),
  );
  t.equal((await v1Refresh(ctx, tokens.refresh)).statusCode, 200, 'the token is still current');
});

t.test("jwt/refresh: the session's absolute lifetime still applies and is not extended", async (t) => {
  const ctx = await buildAuthTestApp(t, { REFRESH_TOKEN_TTL_SECONDS: '100' });
  const { tokens } = await signIn(ctx);
  const key = `${ctx.prefix}:session:{${tokens.refresh.split('.')[0] ?? ''}}`;
  const before = await ctx.redis.pttl(key);
  t.ok(before > 90_000 && before <= 100_000);
  for (let i = 0; i < 3; i++) t.equal((await seedRefresh(ctx, tokens.refresh)).statusCode, 200);
  t.ok((await ctx.redis.pttl(key)) <= before, 'using the token does not extend the session');
  // The lifetime is Redis's own expiry, not the app's clock: the test puts it in the past.
  await ctx.redis.pexpireat(key, Date.now() - 1);
  assertProblem(t, await seedRefresh(ctx, tokens.refresh), 401, 'token_invalid', 'past its lifetime');
});

t.test('jwt/refresh: malformed and unknown tokens are 401 token_invalid, bad bodies 400', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const [sessionId] = tokens.refresh.split('.');
  for (const refresh of ['garbage', `${'a'.repeat(22)}.${'b'.repeat(43)}`, `${sessionId}.${'c'.repeat(43)}`]) {
    assertProblem(t, await seedRefresh(ctx, refresh), 401, 'token_invalid', refresh);
  }
  t.equal((await seedRefresh(ctx, tokens.refresh)).statusCode, 200, 'a guessed secret did not end the session');
  for (const payload of [{}, { refresh: '' }, { refresh: 42 }, { refresh: 'x'.repeat(257) }]) {
    assertProblem(t, await post(ctx, SEED_REFRESH, payload), 400, 'validation_failed', JSON.stringify(payload));
  }
});

t.test('jwt/verify: {} for a valid access token, 401 problem+json for anything else', async (t) => {
  const ctx = await buildAuthTestApp(t, { ACCESS_TOKEN_TTL_SECONDS: '60' });
  const { tokens } = await signIn(ctx);
  const fromSeed = (await seedRefresh(ctx, tokens.refresh)).json().access as string;
  for (const [name, token] of [
    ['signed in', tokens.access],
    ['from jwt/refresh', fromSeed],
  ] as const) {
    for (const url of [SEED_VERIFY, SEED_VERIFY.slice(0, -1)]) {
      const res = await post(ctx, url, { token });
      t.equal(res.statusCode, 200, `${name} at ${url}`);
      t.equal(res.body, '{}');
      t.ok(Value.Check(SecondSeedVerifyAnswer, res.json()));
    }
  }

  const [header, payload, signature] = tokens.access.split('.');
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const headerJson = JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  const foreigner = new TestTokenIssuer();
  foreigner.addKey({ kid: String(headerJson['kid']) });
  ctx.clock.advance(-120);
  const expired = (await signIn(ctx, '+79001230001')).tokens.access;
  ctx.clock.advance(120);
  for (const [name, token] of [
    ['expired', expired],
    ['tampered', `${header}.${b64({ ...claims, sub: '999' })}.${signature}`],
    ['unknown kid', `${b64({ ...headerJson, kid: 'nope' })}.${payload}.${signature}`],
    ['another key', foreigner.sign(claims)],
    ['another issuer', foreigner.sign({ ...claims, iss: 'someone-else' })],
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`],
    ['a refresh token', tokens.refresh],
    ['garbage', 'not.a.jwt'],
  ] as const) {
    assertProblem(t, await post(ctx, SEED_VERIFY, { token }), 401, 'token_invalid', name);
  }
  assertProblem(t, await post(ctx, SEED_VERIFY, {}), 400, 'validation_failed', 'no token');
});

t.test('jwt/verify: a token of our own key for another audience or issuer is refused', async (t) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const ctx = await buildAuthTestApp(t, { JWT_PRIVATE_KEY: pem });
  t.equal((await post(ctx, SEED_VERIFY, { token: (await signIn(ctx)).tokens.access })).statusCode, 200);
  for (const env of [{ JWT_AUDIENCE: 'someone-else' }, { JWT_ISSUER: 'someone-else' }] as Record<string, string>[]) {
    const other = await buildAuthTestApp(t, { JWT_PRIVATE_KEY: pem, ...env });
    const token = (await signIn(other)).tokens.access;
    assertProblem(t, await post(ctx, SEED_VERIFY, { token }), 401, 'token_invalid', JSON.stringify(env));
  }
});
