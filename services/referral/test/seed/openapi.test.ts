import t from 'tap';
import { buildReferralTestApp } from '../referral-test-app.js';

t.test('the seed operations are in the OpenAPI document, deprecated, with their own shapes', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  const seedPath = doc.paths['/api/v1/users/current_user'];
  for (const method of ['get', 'patch']) {
    const op = seedPath?.[method];
    t.equal(op?.deprecated, true, `${method} is deprecated`);
    t.same(op?.responses['200'].content['application/json'].schema.properties.id.type, 'integer');
  }
  const patch400 = seedPath.patch.responses['400'].description;
  for (const code of [
    'validation_failed',
    'invite_not_found',
    'invite_already_activated',
    'invite_self',
    'invite_cycle',
  ])
    t.match(patch400, code, `PATCH's 400 names ${code}`);
  t.notOk(seedPath.patch.responses['404'], 'no invite refusal is documented with its own status');
  t.notOk(doc.paths['/api/v1/profile'].get.deprecated, 'our own profile is not deprecated');
  // The gateway publishes these under the first seed's own paths and never serves them as they are.
  t.same(
    Object.keys(doc.paths)
      .filter((p) => p.startsWith('/compat'))
      .sort(),
    ['/compat/seed1/profile', '/compat/seed1/profile/set-invite'],
    'the compat routes are documented for the gateway to rename',
  );
  t.equal(doc.paths['/compat/seed1/profile'].get.deprecated, true, 'and deprecated');
});

t.test('with LEGACY_PATHS=off the document has no seed operation', async (t) => {
  const ctx = await buildReferralTestApp(t, { LEGACY_PATHS: 'off' });
  const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  t.notOk(doc.paths['/api/v1/users/current_user']);
});
