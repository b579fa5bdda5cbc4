import t from 'tap';
import { as, buildReferralTestApp, createUser } from '../referral-test-app.js';

const SEED_ROUTES: Array<{ method: 'GET' | 'PATCH' | 'PUT'; url: string; payload?: object }> = [
  { method: 'GET', url: '/api/v1/users/current_user' },
  { method: 'GET', url: '/api/v1/users/current_user/' },
  { method: 'PATCH', url: '/api/v1/users/current_user', payload: { first_name: 'Ivan' } },
  { method: 'PATCH', url: '/api/v1/users/current_user/', payload: { first_name: 'Ivan' } },
  { method: 'GET', url: '/compat/seed1/profile' },
  { method: 'GET', url: '/compat/seed1/profile/' },
  { method: 'PUT', url: '/compat/seed1/profile/set-invite', payload: { invite_code: 'ABC123' } },
  { method: 'PUT', url: '/compat/seed1/profile/set-invite/', payload: { invite_code: 'ABC123' } },
];

t.test('LEGACY_PATHS=off: every seed and compat route is 404, ours are untouched', async (t) => {
  const ctx = await buildReferralTestApp(t, { LEGACY_PATHS: 'off' });
  const user = await createUser(ctx);
  for (const route of SEED_ROUTES) {
    const res = await ctx.app.inject({ ...route, headers: as(user) });
    t.equal(res.statusCode, 404, `${route.method} ${route.url}`);
    t.equal(res.json().code, 'not_found');
  }
  const unchanged = await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) });
  t.equal(unchanged.statusCode, 200);
  t.equal(unchanged.json().first_name, null, 'the refused PATCHes changed nothing');
  const card = await ctx.app.inject({ method: 'GET', url: `/api/v1/users/${user.id}/`, headers: as(user) });
  t.equal(card.statusCode, 200, 'the public card still answers');
});

t.test('LEGACY_PATHS defaults to on: every seed and compat route answers', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  for (const route of SEED_ROUTES) {
    const res = await ctx.app.inject({ ...route, headers: as(user) });
    // ABC123 belongs to nobody (codes are random): invite_not_found, also a 404, proves the route is there.
    t.not(res.json().code, 'not_found', `${route.method} ${route.url}`);
    t.ok(res.statusCode < 500);
  }
});
