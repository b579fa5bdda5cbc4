import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { testConfig, TestTokenIssuer } from '@refstack/shared/testing';
import { buildApp } from '../../src/app.js';
import { buildAuthTestApp, signIn } from '../auth-test-app.js';
import { KeyError, pemFromEnv, retiredKeysFromEnv } from '../../src/tokens/keyring.js';

const newKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const oneLine = (pem: string) => pem.trim().replace(/\n/g, '\\n');

t.test('a PEM from the environment signs, also written on one line with \\n escapes', async (t) => {
  const key = newKey();
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  t.equal(pemFromEnv(oneLine(pem)), pem.trim());
  const ctx = await buildAuthTestApp(t, { JWT_PRIVATE_KEY: oneLine(pem) });
  const jwks = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  t.equal(jwks.keys.length, 1);
  const expected = key.publicKey.export({ format: 'jwk' });
  t.match(jwks.keys[0], { x: expected.x, y: expected.y });
  const { tokens } = await signIn(ctx);
  t.equal(
    (await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/token/verify', payload: { token: tokens.access } }))
      .statusCode,
    200,
  );
});

t.test('rotation: the newest key signs, a retired key is still published and accepted', async (t) => {
  const current = newKey();
  const retired = newKey();
  const ctx = await buildAuthTestApp(t, {
    JWT_PRIVATE_KEY: current.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEYS: retired.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  });
  const jwks = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  t.equal(jwks.keys.length, 2);
  const { tokens, user } = await signIn(ctx);
  const header = JSON.parse(Buffer.from(tokens.access.split('.')[0] ?? '', 'base64url').toString());
  t.equal(header.kid, jwks.keys[0].kid, 'the current key signs');

  // A token the retired key signed before the rotation still verifies until it expires.
  const issuer = new TestTokenIssuer();
  issuer.addKey({
    privatePem: retired.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    kid: jwks.keys[1].kid,
  });
  const token = issuer.sign({ sub: user.id, phone: user.phone, exp: Math.floor(Date.now() / 1000) + 60 });
  const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/token/verify', payload: { token } });
  t.equal(res.statusCode, 200);
});

t.test('development keeps its generated key in Redis, so a restart keeps it', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const first = (await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  const restarted = await buildApp(testConfig({ REDIS_KEY_PREFIX: ctx.prefix }), { redis: ctx.redis });
  t.teardown(() => restarted.close());
  const second = (await restarted.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  t.same(second, first);
});

t.test('keys that are not P-256 are refused', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  t.throws(() => retiredKeysFromEnv(rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString()), KeyError);
  t.throws(() => retiredKeysFromEnv('not a pem'), KeyError);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  await t.rejects(
    buildAuthTestApp(t, { JWT_PRIVATE_KEY: p384.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }),
    KeyError,
  );
});
