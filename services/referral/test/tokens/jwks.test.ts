import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { JwksClient } from '../../src/tokens/jwks-client.js';
import { as, buildReferralTestApp, createUser, eventually } from '../referral-test-app.js';

const profileStatus = async (app: FastifyInstance, token: string) =>
  (await app.inject({ method: 'GET', url: '/api/v1/profile', headers: { authorization: `Bearer ${token}` } }))
    .statusCode;

t.test('keys are fetched once, not per request', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  for (let i = 0; i < 5; i += 1) {
    t.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })).statusCode, 200);
  }
  t.equal(ctx.issuer.jwksFetches, 1);
});

t.test('a rotated-in key is picked up on its first unknown kid', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  const kid = ctx.issuer.addKey();
  const token = ctx.issuer.sign({ sub: user.id, phone: user.phone }, { kid });
  const res = await ctx.app.inject({
    method: 'GET',
    url: '/api/v1/profile',
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(res.statusCode, 200);
  t.equal(ctx.issuer.jwksFetches, 2);
});

t.test('unknown kids cannot make it fetch more than once per interval', async (t) => {
  const ctx = await buildReferralTestApp(t);
  let clock = 1_000_000;
  const client = new JwksClient({ url: ctx.issuer.jwksUrl, timeoutMs: 1000, minRefreshMs: 30_000, now: () => clock });
  await client.refresh();
  const before = ctx.issuer.jwksFetches;
  for (let i = 0; i < 20; i += 1) await t.rejects(client.publicPem(`forged-${i}`), { code: 'unauthorized' });
  t.equal(ctx.issuer.jwksFetches, before, 'no fetch within the interval');
  clock += 30_000;
  await t.rejects(client.publicPem('forged-late'), { code: 'unauthorized' });
  t.equal(ctx.issuer.jwksFetches, before + 1);
});

t.test('JWKS unreachable with no keys yet: 503, not 401', async (t) => {
  const client = new JwksClient({ url: 'http://127.0.0.1:1/.well-known/jwks.json', timeoutMs: 500 });
  await t.rejects(client.publicPem('any'), { code: 'service_unavailable' });
});

t.test('the first auth instance down: the keys come from the next (AUTH_URLS)', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const client = new JwksClient({
    url: 'http://127.0.0.1:1/.well-known/jwks.json',
    alternates: [ctx.issuer.jwksUrl],
    timeoutMs: 500,
  });
  await client.refresh();
  const kid = ctx.issuer.keys[0]?.kid;
  t.ok(kid !== undefined && client.isPublished(kid), 'the key set of the instance that answered');
});

// The retired key's kid never comes up as unknown here, so only the periodic refresh can retire it.
t.test('a retired key stops verifying within the refresh interval, remembered tokens included', async (t) => {
  const ctx = await buildReferralTestApp(t, { JWKS_REFRESH_SECONDS: '1' });
  const user = await createUser(ctx);
  const [leaked, next] = [ctx.issuer.keys[0]?.kid, ctx.issuer.addKey()];
  const nextToken = ctx.issuer.sign({ sub: user.id, phone: user.phone }, { kid: next });
  t.equal(await profileStatus(ctx.app, user.token), 200, 'a token of the key about to leak, now remembered');
  t.equal(await profileStatus(ctx.app, nextToken), 200);
  const fetchesBefore = ctx.issuer.jwksFetches;

  ctx.issuer.retired.add(leaked as string);
  const took = await eventually(
    'the leaked key stops verifying',
    async () => (await profileStatus(ctx.app, user.token)) === 401,
    15_000,
  );
  t.ok(ctx.issuer.jwksFetches > fetchesBefore, `refetched by the timer (${took} ms after the key was retired)`);
  const fresh = ctx.issuer.sign({ sub: user.id, phone: user.phone }, { kid: leaked });
  t.equal(await profileStatus(ctx.app, fresh), 401, 'a token of that key not seen before is refused as well');
  t.equal(await profileStatus(ctx.app, nextToken), 200, 'the key still published keeps verifying');
});

t.test('a failed refresh keeps the last good keys and is logged', async (t) => {
  const ctx = await buildReferralTestApp(t, { JWKS_REFRESH_SECONDS: '1' });
  const user = await createUser(ctx);
  t.equal(await profileStatus(ctx.app, user.token), 200);
  const failures = () => ctx.logs.lines.filter((l) => l['msg'] === 'JWKS refresh failed; keeping the last keys');
  for (const fault of ['http_500', 'no_keys'] as const) {
    ctx.issuer.fault = fault;
    const seen = failures().length;
    await eventually(`a logged failed refresh (${fault})`, () => failures().length > seen, 15_000);
    t.equal(await profileStatus(ctx.app, user.token), 200, `the remembered token still verifies (${fault})`);
    const fresh = ctx.issuer.sign({ sub: user.id, phone: user.phone });
    t.equal(await profileStatus(ctx.app, fresh), 200, `so does a new token of the same key (${fault})`);
  }
  t.match(failures().at(-1), { level: 40, reason: /no usable key/ });
});
