import t from 'tap';
import { mergeOpenApi, type OpenApiDocument } from '../src/openapi-merge.js';
import { LEGACY_ROUTES } from '../src/routes.js';

const op = (summary: string) => ({
  summary,
  responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } },
});

const auth: OpenApiDocument = {
  openapi: '3.1.0',
  info: { title: 'auth', version: '1' },
  paths: {
    '/api/v1/auth/send-code': { post: op('send') },
    '/api/v1/auth/verify': { post: op('verify') },
    '/.well-known/jwks.json': { get: op('jwks') },
    '/health/ready': { get: op('health') },
  },
  components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
};
const referral: OpenApiDocument = {
  openapi: '3.1.0',
  info: { title: 'referral', version: '1' },
  paths: {
    '/api/v1/profile': { get: op('profile'), patch: op('patch') },
    '/api/v1/profile/invite': { put: op('invite') },
    '/internal/v1/users/sign-in': { post: op('internal') },
  },
};

t.test('public paths of both services, none of the internal or operational ones', async (t) => {
  const merged = mergeOpenApi([auth, referral], LEGACY_ROUTES);
  t.equal(merged.openapi, '3.1.0');
  const paths = Object.keys(merged.paths ?? {});
  for (const p of [
    '/api/v1/auth/send-code',
    '/api/v1/auth/verify',
    '/.well-known/jwks.json',
    '/api/v1/profile',
    '/api/v1/profile/invite',
  ])
    t.ok(paths.includes(p), p);
  t.notOk(paths.some((p) => p.startsWith('/internal') || p.startsWith('/health')));
  t.same(Object.keys(merged.paths?.['/api/v1/profile'] ?? {}).sort(), ['get', 'patch']);
  t.ok(merged.components?.securitySchemes?.['bearerAuth']);
});

t.test("the first version's paths appear as deprecated copies of what serves them", async (t) => {
  const merged = mergeOpenApi([auth, referral], LEGACY_ROUTES);
  for (const route of LEGACY_ROUTES) {
    const operation = merged.paths?.[route.path]?.[route.method.toLowerCase()];
    t.ok(operation, route.path);
    t.equal(operation?.deprecated, true);
    t.same(operation?.tags, ['legacy']);
    t.same(operation?.responses, merged.paths?.[route.target]?.[route.method.toLowerCase()]?.responses, 'same answers');
    t.match(operation?.description, route.target);
  }
  const ids = Object.values(merged.paths ?? {}).flatMap((item) => Object.values(item).map((o) => o.operationId));
  t.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  t.notOk(auth.paths?.['/api/v1/auth/verify']?.['post']?.deprecated, 'the inputs are not changed');
});
