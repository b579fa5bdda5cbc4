import t from 'tap';
import fc from 'fast-check';
import { as, buildReferralTestApp, createUser, INTERNAL_TOKEN } from './referral-test-app.js';

t.test('no JSON body or query makes a referral route answer 5xx; every refusal is problem+json', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  // The internal routes change or erase the account they name: another one than the caller's.
  const other = await createUser(ctx);
  const routes: Array<{ method: 'PATCH' | 'PUT' | 'POST' | 'GET'; url: string }> = [
    { method: 'PATCH', url: '/api/v1/profile' },
    { method: 'PUT', url: '/api/v1/profile/invite' },
    { method: 'PATCH', url: '/api/v1/users/current_user' },
    { method: 'PUT', url: '/compat/seed1/profile/set-invite' },
    { method: 'POST', url: '/internal/v1/users/sign-in' },
    { method: 'POST', url: `/internal/v1/users/${other.id}/phone` },
    { method: 'POST', url: `/internal/v1/users/${other.id}/delete` },
  ];
  const bodies = fc.oneof(
    fc.json({ maxDepth: 4 }),
    fc
      .record(
        {
          first_name: fc.oneof(fc.string(), fc.constant(null), fc.integer()),
          last_name: fc.string(),
          email: fc.oneof(fc.emailAddress(), fc.string(), fc.constant(null)),
          invite_code: fc.oneof(fc.string(), fc.integer()),
          invited_by_code: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
          phone: fc.oneof(fc.string(), fc.constantFrom('+79001234567', '89001234568'), fc.integer()),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  );
  const failures: string[] = [];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), bodies, async (route, payload) => {
      const res = await ctx.app.inject({
        ...route,
        headers: { ...as(user), 'x-internal-token': INTERNAL_TOKEN, 'content-type': 'application/json' },
        payload,
      });
      const ok =
        res.statusCode < 500 &&
        (res.statusCode < 400 || /^application\/problem\+json/.test(String(res.headers['content-type'])));
      if (!ok)
        failures.push(
          `${route.method} ${route.url} ${payload.slice(0, 80)} -> ${res.statusCode} ${res.body.slice(0, 120)}`,
        );
      return ok;
    }),
    { numRuns: 700 },
  );
  const queries = fc.record(
    { limit: fc.oneof(fc.string(), fc.integer()), cursor: fc.string(), search: fc.string() },
    { requiredKeys: [] },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('/api/v1/profile/invited', '/api/v1/users', '/api/v1/users/1'),
      queries,
      async (url, query) => {
        const qs = new URLSearchParams(
          Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])),
        ).toString();
        const res = await ctx.app.inject({ method: 'GET', url: `${url}?${qs}`, headers: as(user) });
        const ok = res.statusCode < 500;
        if (!ok) failures.push(`GET ${url}?${qs} -> ${res.statusCode} ${res.body.slice(0, 120)}`);
        return ok;
      },
    ),
    { numRuns: 300 },
  );
  t.same(failures, []);
});
