import t from 'tap';
import { buildAuthTestApp, PHONE, signIn } from '../auth-test-app.js';
import { assertProblem, post } from './seed-kit.js';

const SEED_PATHS = [
  '/api/v1/auth/send_code/',
  '/api/v1/auth/jwt/get_by_phone/',
  '/api/v1/auth/jwt/refresh/',
  '/api/v1/auth/jwt/verify/',
  '/compat/seed1/auth/send-code',
  '/compat/seed1/auth/verify',
];

const withAndWithoutSlash = (path: string) => (path.endsWith('/') ? [path, path.slice(0, -1)] : [path, `${path}/`]);

t.test('LEGACY_PATHS=off: every seed path and compat route is 404; the v1 routes answer as before', async (t) => {
  const ctx = await buildAuthTestApp(t, { LEGACY_PATHS: 'off' });
  const { tokens } = await signIn(ctx);
  for (const url of SEED_PATHS.flatMap(withAndWithoutSlash)) {
    const res = await post(ctx, url, { phone: PHONE, code: '123456', refresh: tokens.refresh, token: tokens.access });
    assertProblem(t, res, 404, 'not_found', url);
  }
  t.equal(ctx.outbox.jobs.length, 1, 'no code was sent by a seed path');
  t.equal((await post(ctx, '/api/v1/auth/refresh', { refresh: tokens.refresh })).statusCode, 200);
  const spec = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: object };
  for (const path of SEED_PATHS) t.notOk(path in spec.paths, `${path} is not documented either`);
});

t.test('LEGACY_PATHS defaults to on', async (t) => {
  const ctx = await buildAuthTestApp(t);
  for (const url of SEED_PATHS) {
    const res = await post(ctx, url, {});
    assertProblem(t, res, 400, 'validation_failed', `${url} is served`);
  }
});

interface Operation {
  deprecated?: boolean;
  security?: unknown;
  tags?: string[];
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> };
  responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }>;
}

t.test("the second seed's operations: deprecated, no token, their own shapes", async (t) => {
  const ctx = await buildAuthTestApp(t);
  const spec = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, Operation>>;
  };
  const shapes: Record<string, { body: string[]; answer: string[]; statuses: string[] }> = {
    '/api/v1/auth/send_code/': {
      body: ['phone', 'captcha_token'],
      answer: ['message', 'phone', 'expires_in', 'resend_in'],
      statuses: ['200', '400', '403', '422', '429', '503'],
    },
    '/api/v1/auth/jwt/get_by_phone/': {
      body: ['phone', 'code', 'invited_by_code'],
      answer: ['access', 'refresh', 'user', 'tokens', 'created'],
      statuses: ['200', '400', '403', '429', '503'],
    },
    '/api/v1/auth/jwt/refresh/': {
      body: ['refresh'],
      answer: ['access', 'token_type', 'expires_in'],
      // 403: the user was blocked; 503: referral, which a refresh asks for the user, is away.
      statuses: ['200', '400', '401', '403', '503'],
    },
    '/api/v1/auth/jwt/verify/': { body: ['token'], answer: [], statuses: ['200', '400', '401'] },
  };
  for (const [path, shape] of Object.entries(shapes)) {
    const operation = spec.paths[path]?.['post'];
    if (!operation) {
      t.fail(`${path} is documented`);
      continue;
    }
    t.equal(operation.deprecated, true, `${path} deprecated`);
    t.same(operation.security, [], `${path} needs no token`);
    t.same(operation.tags, ['legacy'], `${path} tags`);
    const body = operation.requestBody?.content['application/json']?.schema.properties ?? {};
    t.same(Object.keys(body), shape.body, `${path} body`);
    const answer = operation.responses['200']?.content?.['application/json']?.schema.properties ?? {};
    t.same(Object.keys(answer), shape.answer, `${path} answer`);
    t.same(Object.keys(operation.responses).sort(), shape.statuses, `${path} statuses`);
  }
  const refusals = spec.paths['/api/v1/auth/jwt/get_by_phone/']?.['post']?.responses['403'] as { description: string };
  t.match(refusals.description, /otp_invalid.*otp_expired.*invite_not_found.*invite_already_activated.*invite_self/);
  t.notOk(spec.paths['/api/v1/auth/jwt/get_by_phone/']?.['post']?.responses['401'], 'no 401 left on it');
});
