import t from 'tap';
import { mergeOpenApi, type OpenApiDocument } from '../src/openapi-merge.js';
import { LEGACY_ROUTES, SECOND_SEED_PATHS } from '../src/routes.js';

const op = (summary: string, extra: Record<string, unknown> = {}) => ({
  summary,
  responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } },
  ...extra,
});
const bearer = { security: [{ bearerAuth: [] }] };
const seed1 = (summary: string, extra: Record<string, unknown> = {}) =>
  op(summary, { deprecated: true, description: 'Первая версия.', ...extra });

const auth: OpenApiDocument = {
  openapi: '3.1.0',
  info: { title: 'auth', version: '1' },
  paths: {
    '/api/v1/auth/send-code': { post: op('send', { security: [], tags: ['auth'] }) },
    '/api/v1/auth/verify': { post: op('verify', { security: [] }) },
    '/.well-known/jwks.json': { get: op('jwks') },
    '/health/ready': { get: op('health') },
    '/compat/seed1/auth/send-code': { post: seed1('seed1 send', { security: [] }) },
    // Documented with a trailing slash: found all the same.
    '/compat/seed1/auth/verify/': { post: seed1('seed1 verify', { security: [] }) },
    '/api/v1/auth/send_code/': { post: op('seed2 send', { deprecated: true, tags: ['seed2'] }) },
    '/api/v1/auth/jwt/refresh': { post: op('seed2 refresh', { deprecated: true }) },
  },
  tags: [{ name: 'seed2', description: "The second seed's paths." }],
  components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
};
const referral: OpenApiDocument = {
  openapi: '3.1.0',
  info: { title: 'referral', version: '1' },
  paths: {
    '/api/v1/profile': { get: op('profile', { ...bearer, tags: ['profile'] }), patch: op('patch', bearer) },
    '/api/v1/profile/invite': { put: op('invite', bearer) },
    '/internal/v1/users/sign-in': { post: op('internal') },
    '/compat/seed1/profile': { get: seed1('seed1 profile', bearer) },
    '/compat/seed1/profile/set-invite': { put: seed1('seed1 invite', bearer) },
    '/api/v1/users/current_user': { get: op('seed2 me', { deprecated: true, ...bearer }) },
  },
};

const merge = (seedPaths = true) => mergeOpenApi([auth, referral], { legacy: LEGACY_ROUTES, seedPaths });
const pathsOf = (doc: OpenApiDocument) => Object.keys(doc.paths ?? {});

t.test('public paths of both services, none of the internal, compat or operational ones', async (t) => {
  const merged = merge();
  t.equal(merged.openapi, '3.1.0');
  const paths = pathsOf(merged);
  for (const p of [
    '/api/v1/auth/send-code',
    '/api/v1/auth/verify',
    '/.well-known/jwks.json',
    '/api/v1/profile',
    '/api/v1/profile/invite',
  ])
    t.ok(paths.includes(p), p);
  t.notOk(paths.some((p) => p.startsWith('/internal') || p.startsWith('/health') || p.startsWith('/compat')));
  t.same(Object.keys(merged.paths?.['/api/v1/profile'] ?? {}).sort(), ['get', 'patch']);
  t.ok(merged.components?.securitySchemes?.['bearerAuth']);
  t.same(merged.servers, [{ url: '/', description: 'This gateway' }], 'relative to the gateway it came from');
});

t.test("the first seed's paths are the compat operations under their public path", async (t) => {
  const merged = merge();
  const compat = { ...auth.paths, ...referral.paths };
  for (const route of LEGACY_ROUTES) {
    const method = route.method.toLowerCase();
    const operation = merged.paths?.[route.path]?.[method];
    const source = compat[route.target]?.[method] ?? compat[`${route.target}/`]?.[method];
    t.ok(operation, route.path);
    t.equal(operation?.deprecated, true);
    t.same(operation?.tags, ['legacy']);
    t.same(operation?.responses, source?.responses, 'the compat answers, not the v1 ones');
    t.match(operation?.summary, source?.summary);
    t.match(operation?.description, route.successor, 'names the route to use instead');
    t.match(operation?.description, 'Первая версия.', "keeps the service's own description");
    t.notMatch(operation?.description, '/compat', 'says nothing of the compat route');
  }
  t.same(
    merged.paths?.['/api/profile/']?.['get']?.['security'],
    [{ bearerAuth: [] }, { legacyCookie: [] }],
    'the cookie is an alternative to the bearer token',
  );
  t.same(merged.components?.securitySchemes?.['legacyCookie'], {
    type: 'apiKey',
    in: 'cookie',
    name: 'refstack_access',
  });
  t.same(merged.paths?.['/api/auth/verify/']?.['post']?.['security'], [], 'the login paths stay public');
  const ids = Object.values(merged.paths ?? {}).flatMap((item) => Object.values(item).map((o) => o.operationId));
  t.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  t.notOk(auth.paths?.['/compat/seed1/auth/send-code']?.['post']?.tags, 'the inputs are not changed');
});

t.test("the second seed's paths appear as the services document them", async (t) => {
  const merged = merge();
  t.equal(merged.paths?.['/api/v1/auth/send_code/']?.['post']?.deprecated, true);
  t.same(merged.paths?.['/api/v1/auth/send_code/']?.['post']?.tags, ['seed2']);
  t.ok(merged.paths?.['/api/v1/users/current_user']?.['get']);
  t.ok(
    merged.tags?.some((tag) => tag.name === 'seed2' && tag.description),
    "a service's own tag keeps its description",
  );
});

t.test("seedPaths false (LEGACY_PATHS=off): neither seed's paths, nor the legacy tag", async (t) => {
  const merged = merge(false);
  const paths = pathsOf(merged);
  for (const route of LEGACY_ROUTES) t.notOk(paths.includes(route.path), route.path);
  for (const path of SECOND_SEED_PATHS) {
    t.notOk(paths.includes(path), path);
    t.notOk(paths.includes(`${path}/`), `${path}/`);
  }
  t.notOk(paths.some((p) => p.startsWith('/compat')));
  t.ok(paths.includes('/api/v1/auth/send-code'), 'the v1 routes stay');
  t.same(
    merged.tags?.map((tag) => tag.name),
    ['auth', 'profile'],
    'only the tags in use: no legacy, no seed2',
  );
  t.notOk(merged.components?.securitySchemes?.['legacyCookie']);
});

t.test('a compat operation a service does not document leaves its legacy path out', async (t) => {
  const merged = mergeOpenApi([referral], { legacy: LEGACY_ROUTES, seedPaths: true });
  t.ok(merged.paths?.['/api/profile/']);
  t.notOk(merged.paths?.['/api/auth/send-code/'], 'never documented with another route’s shapes');
});
