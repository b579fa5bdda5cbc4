import t from 'tap';
import { createHash, createHmac, createPublicKey, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { TestTokenIssuer } from '@refstack/shared/testing';
import { SPENT_KEPT } from '../../src/tokens/session-store.js';
import { buildAuthTestApp, signIn } from '../auth-test-app.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decodePart = (part: string | undefined) =>
  JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

async function tokenVerify(app: Awaited<ReturnType<typeof buildAuthTestApp>>['app'], token: string) {
  return app.inject({ method: 'POST', url: '/api/v1/auth/token/verify', payload: { token } });
}

t.test('access tokens: ES256 with a kid from the JWKS and the contract claims', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens, user } = await signIn(ctx);
  const [headerPart, payloadPart, signaturePart] = tokens.access.split('.');
  const header = decodePart(headerPart);
  const claims = decodePart(payloadPart);
  t.match(header, { alg: 'ES256', typ: 'JWT', kid: String });
  t.match(claims, {
    sub: user.id,
    phone: '+79123456789',
    roles: [],
    iss: 'refstack-auth',
    aud: 'refstack',
    iat: Number,
    exp: Number,
    jti: /^[0-9a-f-]{36}$/,
  });
  t.equal(Number(claims['exp']) - Number(claims['iat']), 900);

  const jwks = await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  t.equal(jwks.statusCode, 200);
  t.match(jwks.headers['cache-control'], /max-age=60\b/, 'kept no longer than verifiers refresh it');
  const key = jwks.json().keys.find((k: { kid: string }) => k.kid === header['kid']);
  t.match(key, { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', x: String, y: String });
  t.notOk('d' in key, 'no private part is published');

  // Anyone can verify with the published key alone.
  const verifier = createVerify('SHA256');
  verifier.update(`${headerPart}.${payloadPart}`);
  t.ok(
    verifier.verify(
      { key: createPublicKey({ key: key, format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
      Buffer.from(signaturePart ?? '', 'base64url'),
    ),
  );

  const verified = await tokenVerify(ctx.app, tokens.access);
  t.equal(verified.statusCode, 200);
  t.same(verified.json(), { valid: true, sub: user.id, exp: claims['exp'] });
});

t.test('forged, tampered and expired tokens are refused', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const [headerPart, payloadPart, signaturePart] = tokens.access.split('.');
  const header = decodePart(headerPart);
  const claims = decodePart(payloadPart);
  const jwks = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  const publicPem = createPublicKey({ key: jwks.keys[0], format: 'jwk' })
    .export({ format: 'pem', type: 'spki' })
    .toString();

  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
  const hsInput = `${b64({ ...header, alg: 'HS256' })}.${b64(claims)}`;
  const hs256 = `${hsInput}.${createHmac('sha256', publicPem).update(hsInput).digest('base64url')}`;
  const tampered = `${headerPart}.${b64({ ...claims, sub: '999', roles: ['admin'] })}.${signaturePart}`;
  // The same header and claims, signed by a key auth does not have.
  const foreigner = new TestTokenIssuer();
  foreigner.addKey({ kid: String(header['kid']) });
  const foreign = foreigner.sign(claims);
  const unknownKid = `${b64({ ...header, kid: 'nope' })}.${payloadPart}.${signaturePart}`;

  for (const [name, token] of [
    ['alg none', none],
    ['HS256 keyed with the public key', hs256],
    ['tampered claims', tampered],
    ['signed by another key', foreign],
    ['unknown kid', unknownKid],
    ['garbage', 'not.a.jwt'],
  ] as const) {
    const res = await tokenVerify(ctx.app, token);
    t.equal(res.statusCode, 401, name);
    t.equal(res.json().code, 'token_invalid', name);
  }
});

t.test('an expired access token is refused', async (t) => {
  const ctx = await buildAuthTestApp(t, { ACCESS_TOKEN_TTL_SECONDS: '60' });
  // Issued "two minutes ago" by the injected clock: expired by the real one that verifies.
  ctx.clock.advance(-120);
  const { tokens } = await signIn(ctx);
  const res = await tokenVerify(ctx.app, tokens.access);
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'token_invalid');
});

t.test('refresh rotates; a reused refresh token revokes the whole session', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens: first, user } = await signIn(ctx);
  t.match(first.refresh, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/, 'session id and 256 random bits');

  const rotated = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/refresh',
    payload: { refresh: first.refresh },
  });
  t.equal(rotated.statusCode, 200);
  const second = rotated.json();
  t.match(second, { access: String, refresh: String, token_type: 'Bearer', expires_in: 900 });
  t.not(second.refresh, first.refresh);
  t.equal((await tokenVerify(ctx.app, second.access)).json().sub, user.id);

  const third = (
    await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh: second.refresh } })
  ).json();

  const reused = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/refresh',
    payload: { refresh: first.refresh },
  });
  t.equal(reused.statusCode, 401);
  t.equal(reused.json().code, 'token_reused');
  const newest = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/refresh',
    payload: { refresh: third.refresh },
  });
  t.equal(newest.statusCode, 401, 'the newest token of the family stopped working too');
  t.equal(newest.json().code, 'token_invalid');
});

t.test('a reused refresh token announces its session revoked even when its index cannot be updated', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens: first, user } = await signIn(ctx);
  const refresh = (token: string) =>
    ctx.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh: token } });
  t.equal((await refresh(first.refresh)).statusCode, 200);
  // The user's session list cannot be written (on a cluster, its slot failing over).
  await ctx.redis.set(`${ctx.prefix}:user-sessions:{${user.id}}`, 'not a session list');
  const reused = await refresh(first.refresh);
  t.equal(reused.json().code, 'token_reused', reused.body);
  const sid = first.refresh.split('.')[0];
  t.ok(
    (await ctx.redis.zrange(`${ctx.prefix}:revocations`, '0', '-1')).includes(JSON.stringify({ sid })),
    'every service learns that its access tokens are revoked',
  );
});

t.test('only hashes of refresh tokens are stored', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const keys = await ctx.redis.keys(`${ctx.prefix}:session:*`);
  t.ok(keys.length > 0);
  for (const key of keys) {
    const type = await ctx.redis.type(key);
    const values = type === 'hash' ? Object.values(await ctx.redis.hgetall(key)) : await ctx.redis.smembers(key);
    t.notOk(
      values.some((v) => v.includes(tokens.refresh.split('.')[1] ?? '???')),
      key,
    );
  }
});

t.test('parallel refreshes with one token: exactly one wins', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const answers = await Promise.all(
    Array.from({ length: 10 }, () =>
      ctx.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh: tokens.refresh } }),
    ),
  );
  t.equal(answers.filter((r) => r.statusCode === 200).length, 1);
  t.ok(
    answers.filter((r) => r.statusCode === 401).every((r) => ['token_reused', 'token_invalid'].includes(r.json().code)),
  );
});

t.test('logout revokes the session', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const out = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/logout',
    payload: { refresh: tokens.refresh },
  });
  t.equal(out.statusCode, 204);
  t.equal(out.body, '');
  const after = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/refresh',
    payload: { refresh: tokens.refresh },
  });
  t.equal(after.statusCode, 401);
  t.equal(after.json().code, 'token_invalid');
  const twice = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/logout',
    payload: { refresh: tokens.refresh },
  });
  t.equal(twice.statusCode, 401);
  for (const refresh of ['garbage', `${'a'.repeat(22)}.${'b'.repeat(43)}`]) {
    const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh } });
    t.equal(res.json().code, 'token_invalid');
  }
});

t.test('the refresh session has an absolute lifetime', async (t) => {
  const ctx = await buildAuthTestApp(t, { REFRESH_TOKEN_TTL_SECONDS: '100' });
  const { tokens } = await signIn(ctx);
  const sessionId = tokens.refresh.split('.')[0];
  const key = `${ctx.prefix}:session:{${sessionId}}`;
  const before = await ctx.redis.pttl(key);
  t.ok(before > 90_000 && before <= 100_000);
  const rotated = (
    await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh: tokens.refresh } })
  ).json();
  t.ok(rotated.refresh);
  t.ok((await ctx.redis.pttl(key)) <= before, 'rotation does not extend it');
  t.ok((await ctx.redis.pttl(`${key}:spent-at`)) <= before, 'spent tokens leave with the session');
});

const refreshWith = (ctx: Awaited<ReturnType<typeof buildAuthTestApp>>, refresh: string) =>
  ctx.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh } });

// A client refreshing in a loop: each rotation adds a spent hash to the session's record.
t.test(
  'a session rotates at most SPENT_KEPT times in an hour; what it spent stays bounded and its reuse is caught',
  async (t) => {
    const ctx = await buildAuthTestApp(t);
    const { tokens } = await signIn(ctx);
    const sessionId = tokens.refresh.split('.')[0];
    const spentAt = `${ctx.prefix}:session:{${sessionId}}:spent-at`;
    const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
    const spent: string[] = [];
    let refresh = tokens.refresh;
    for (let n = 0; n < SPENT_KEPT; n += 1) {
      const res = await refreshWith(ctx, refresh);
      if (res.statusCode !== 200) t.fail(`rotation ${n + 1}: ${res.statusCode} ${res.body}`);
      spent.push(refresh);
      refresh = res.json().refresh;
      ctx.clock.advance(1);
    }
    const limited = await refreshWith(ctx, refresh);
    t.equal(limited.statusCode, 429, limited.body);
    t.equal(limited.json().code, 'rate_limited');
    // The first rotation leaves the hour SPENT_KEPT seconds after it began.
    const retryAfter = Number(limited.headers['retry-after']);
    t.ok(retryAfter >= 3600 - SPENT_KEPT - 1 && retryAfter <= 3600 - SPENT_KEPT + 1, `Retry-After ${retryAfter}`);
    t.equal(await ctx.redis.zcard(spentAt), SPENT_KEPT, 'the record holds SPENT_KEPT spent tokens');

    ctx.clock.advance(retryAfter);
    const later = await refreshWith(ctx, refresh);
    t.equal(later.statusCode, 200, 'the same token rotates once the oldest rotation left the hour');
    t.equal(await ctx.redis.zcard(spentAt), SPENT_KEPT, 'and the record still holds SPENT_KEPT');
    t.equal(await ctx.redis.zscore(spentAt, sha256(spent[0]!)), null, 'the oldest spent token left it');
    const legacy = await ctx.redis.scard(spentAt.replace(/-at$/, ''));
    t.ok(
      legacy > 0 && legacy <= SPENT_KEPT,
      `the earlier record, kept for a rolling deploy, is held to as many (${legacy})`,
    );
    const reused = await refreshWith(ctx, spent[SPENT_KEPT - 1]!);
    t.equal(reused.json().code, 'token_reused', 'a token spent within the hour is reuse');
    t.equal((await refreshWith(ctx, later.json().refresh)).json().code, 'token_invalid', 'and ended the session');
  },
);

// Sessions begun before spent tokens were kept by time kept them in a plain set.
t.test('a token spent into the earlier record is still reuse and ends the session', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const { tokens } = await signIn(ctx);
  const sessionId = tokens.refresh.split('.')[0];
  const key = `${ctx.prefix}:session:{${sessionId}}`;
  const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
  const current = `${sessionId}.${randomBytes(32).toString('base64url')}`;
  await ctx.redis.sadd(`${key}:spent`, sha256(tokens.refresh));
  await ctx.redis.hset(key, 'current', sha256(current));
  t.equal((await refreshWith(ctx, tokens.refresh)).json().code, 'token_reused');
  t.equal((await refreshWith(ctx, current)).json().code, 'token_invalid', 'the session ended');
  t.equal(await ctx.redis.exists(key, `${key}:spent`), 0, 'both its keys are gone');
});

t.test(
  'token/verify requires iss, aud, exp and sub: a token signed with the real key but missing one is refused',
  async (t) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const ctx = await buildAuthTestApp(t, { JWT_PRIVATE_KEY: pem });
    const kid = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys[0].kid as string;
    const issuer = new TestTokenIssuer();
    issuer.addKey({ privatePem: pem, kid });
    const complete = { sub: '1', phone: '+79123456789' };
    t.equal((await tokenVerify(ctx.app, issuer.sign(complete))).statusCode, 200, 'the complete token is valid');
    for (const claim of ['iss', 'aud', 'exp', 'sub'] as const) {
      // A claim given as undefined is left out of the token.
      const res = await tokenVerify(ctx.app, issuer.sign({ ...complete, [claim]: undefined }));
      t.equal(res.statusCode, 401, `without ${claim}`);
      t.equal(res.json().code, 'token_invalid', `without ${claim}`);
    }
  },
);
