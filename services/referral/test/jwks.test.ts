import t from 'tap';
import { JwksClient } from '../src/auth/jwks-client.js';
import { as, buildReferralTestApp, createUser } from './helpers.js';

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
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: { authorization: `Bearer ${token}` } });
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
