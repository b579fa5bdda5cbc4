import t, { type Test } from 'tap';
import Fastify from 'fastify';
import { testConfig } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import { buildOperationsApp } from '../src/operations.js';

/** A stand-in upstream: both verifies answer tokens; everything else echoes what arrived. */
async function upstream(t: Test) {
  const seen: Array<{ url: string; headers: Record<string, unknown> }> = [];
  const app = Fastify();
  const signedIn = async () => ({
    user: { id: 1 },
    tokens: { access: 'header.payload.signature', refresh: 'r' },
    created: true,
  });
  app.post('/api/v1/auth/verify', signedIn);
  app.post('/compat/seed1/auth/verify', signedIn);
  app.get('/openapi.json', async () => ({
    openapi: '3.1.0',
    info: { title: 'x', version: '1' },
    paths: { '/api/v1/profile': { get: { responses: { 200: { description: 'ok' } } } }, '/internal/x': { post: {} } },
  }));
  app.all('/*', async (request) => {
    seen.push({ url: request.url, headers: request.headers });
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, seen };
}

async function setup(t: Test, env: Record<string, string> = {}) {
  const up = await upstream(t);
  const gateway = await buildApp(testConfig({ AUTH_URL: up.url, REFERRAL_URL: up.url, ...env }));
  t.teardown(() => gateway.close());
  return { gateway, up };
}

t.test('legacy clients keep their login in a cookie; v1 routes ignore it', async (t) => {
  const { gateway, up } = await setup(t);
  const login = await gateway.inject({
    method: 'POST',
    url: '/api/auth/verify/',
    payload: { phone: '79346559036', code: '1434' },
    headers: { 'x-csrftoken': 'abc' },
  });
  t.equal(login.statusCode, 200);
  t.same(login.json().tokens.access, 'header.payload.signature', 'the body is unchanged');
  const setCookie = String(login.headers['set-cookie']);
  t.match(setCookie, /^refstack_access=header\.payload\.signature;/);
  t.match(setCookie, /HttpOnly/);
  t.match(setCookie, /SameSite=Strict/);
  t.match(setCookie, /Path=\/api\//);
  t.match(setCookie, /Max-Age=900/);

  const v1Login = await gateway.inject({ method: 'POST', url: '/api/v1/auth/verify', payload: {} });
  t.notOk(v1Login.headers['set-cookie'], 'the v1 route sets no cookie');

  const cookie = 'refstack_access=header.payload.signature';
  await gateway.inject({ method: 'GET', url: '/api/profile/', headers: { cookie, 'x-csrftoken': 'abc' } });
  t.equal(up.seen.at(-1)?.headers['authorization'], 'Bearer header.payload.signature');
  t.notOk(up.seen.at(-1)?.headers['cookie'], 'the cookie itself stays at the gateway');

  await gateway.inject({ method: 'GET', url: '/api/profile/', headers: { cookie, authorization: 'Bearer explicit' } });
  t.equal(up.seen.at(-1)?.headers['authorization'], 'Bearer explicit', 'an explicit header wins');

  await gateway.inject({ method: 'GET', url: '/api/v1/profile', headers: { cookie: `${cookie}; other=1` } });
  t.notOk(up.seen.at(-1)?.headers['authorization'], 'v1 routes do not read the cookie');
  t.notOk(up.seen.at(-1)?.headers['cookie'], 'and no cookie goes on to a service');

  const count = up.seen.length;
  const forged = await gateway.inject({
    method: 'PUT',
    url: '/api/profile/set-invite/',
    headers: { cookie },
    payload: { invite_code: 'AB12CD' },
  });
  t.equal(forged.statusCode, 403, 'a cookie-authenticated change without X-CSRFTOKEN is refused');
  t.equal(forged.json().code, 'forbidden');
  t.equal(up.seen.length, count, 'and never forwarded');
  const real = await gateway.inject({
    method: 'PUT',
    url: '/api/profile/set-invite/',
    headers: { cookie, 'x-csrftoken': 'abc' },
    payload: { invite_code: 'AB12CD' },
  });
  t.equal(real.statusCode, 200);
  t.equal(up.seen.at(-1)?.headers['authorization'], 'Bearer header.payload.signature');
});

t.test(
  'a malformed legacy cookie is a 401 unauthorized problem, never forwarded; the login paths ignore it',
  async (t) => {
    const { gateway, up } = await setup(t);
    const broken = [
      'a%0Ab.c.d',
      'a.b.c%0A',
      '%E2%80%AE',
      '\u202e.b.c',
      '%FF',
      'é.b.c',
      'x'.repeat(3000),
      'a.b',
      'a.b.c.d',
      'a..c',
      'a b.c.d',
      '"a.b.c"',
    ];
    for (const value of broken) {
      const count = up.seen.length;
      for (const [method, url] of [
        ['GET', '/api/profile/'],
        ['PUT', '/api/profile/set-invite/'],
      ] as const) {
        const res = await gateway.inject({
          method,
          url,
          headers: { cookie: `refstack_access=${value}`, 'x-csrftoken': 'abc' },
          payload: method === 'PUT' ? { invite_code: 'AB12CD' } : undefined,
        });
        t.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(value).slice(0, 30)}`);
        t.match(res.headers['content-type'], /^application\/problem\+json/);
        t.equal(res.json().code, 'unauthorized');
      }
      t.equal(up.seen.length, count, 'nothing was forwarded');
    }
    const login = await gateway.inject({
      method: 'POST',
      url: '/api/auth/verify/',
      headers: { cookie: 'refstack_access=a%0Ab', 'x-csrftoken': 'abc' },
      payload: { phone: '79346559036', code: '1434' },
    });
    t.equal(login.statusCode, 200, 'a client with a broken cookie can sign in again');
    t.match(
      String(login.headers['set-cookie']),
      /^refstack_access=header\.payload\.signature;/,
      'and gets a good cookie',
    );
    const sent = await gateway.inject({
      method: 'POST',
      url: '/api/auth/send-code/',
      headers: { cookie: 'refstack_access=header.payload.signature' },
      payload: { phone: '79346559036' },
    });
    t.equal(sent.statusCode, 200, 'the login paths do not treat the cookie as a session');
    t.notOk(up.seen.at(-1)?.headers['authorization']);
  },
);

t.test('a compat verify answering a flat `access` token sets the same cookie; a failed verify sets none', async (t) => {
  const app = Fastify();
  app.post('/compat/seed1/auth/verify', async (request, reply) => {
    const { code } = request.body as { code?: string };
    if (code !== '1434') return reply.code(400).send({ detail: 'Неверный код', access: 'x.y.z' });
    return { access: 'flat.payload.signature', refresh: 'r' };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  const url = `http://127.0.0.1:${address.port}`;
  const gateway = await buildApp(testConfig({ AUTH_URL: url, REFERRAL_URL: url }));
  t.teardown(() => gateway.close());

  const login = await gateway.inject({ method: 'POST', url: '/api/auth/verify/', payload: { code: '1434' } });
  t.equal(login.statusCode, 200);
  t.match(String(login.headers['set-cookie']), /^refstack_access=flat\.payload\.signature;.*HttpOnly/);
  const wrong = await gateway.inject({ method: 'POST', url: '/api/auth/verify/', payload: { code: '0000' } });
  t.equal(wrong.statusCode, 400);
  t.notOk(wrong.headers['set-cookie'], 'only a 200 sets the cookie');
});

t.test('the public port serves no /metrics and no readiness details; the operations port serves both', async (t) => {
  const { gateway: healthy } = await setup(t);
  const ok = await healthy.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ok.statusCode, 200);
  t.same(
    ok.json(),
    { status: 'ok', service: 'gateway', checks: { auth: { status: 'up' }, referral: { status: 'up' } } },
    'up or down per upstream, nothing else',
  );

  const { gateway, up } = await setup(t, { REFERRAL_URL: 'http://127.0.0.1:1' });
  const operations = buildOperationsApp(gateway, testConfig({ AUTH_URL: up.url, REFERRAL_URL: 'http://127.0.0.1:1' }));
  await gateway.inject({ method: 'GET', url: '/api/v1/users/7' });

  const metrics = await gateway.inject({ method: 'GET', url: '/metrics' });
  t.equal(metrics.statusCode, 404, 'no /metrics on the public port');
  t.equal(metrics.json().code, 'not_found');
  const down = await gateway.inject({ method: 'GET', url: '/health/ready' });
  t.equal(down.statusCode, 503, 'readiness keeps its status codes');
  t.same(down.json(), {
    status: 'unavailable',
    service: 'gateway',
    checks: { auth: { status: 'up' }, referral: { status: 'down' } },
  });
  t.notMatch(down.body, /127\.0\.0\.1|ECONNREFUSED|latency|details/, 'no address, error message or upstream report');

  const internalMetrics = await operations.inject({ method: 'GET', url: '/metrics' });
  t.equal(internalMetrics.statusCode, 200);
  t.match(
    internalMetrics.body,
    /http_request_duration_seconds_count\{[^}]*route="\/api\/v1\/users\/\*"[^}]*\} 1/,
    "the public port's requests are counted",
  );
  const report = await operations.inject({ method: 'GET', url: '/health/ready' });
  t.equal(report.statusCode, 503);
  t.match(
    report.json(),
    {
      status: 'unavailable',
      checks: { auth: { status: 'up', latency_ms: Number }, referral: { status: 'down', error: /ECONNREFUSED/ } },
    },
    'the full report is on the operations port',
  );
});

t.test('security headers on every answer', async (t) => {
  const { gateway } = await setup(t);
  for (const url of ['/api/v1/profile', '/nope', '/health/live']) {
    const res = await gateway.inject({ method: 'GET', url });
    t.equal(res.headers['x-content-type-options'], 'nosniff', url);
    t.match(res.headers['content-security-policy'], /default-src 'none'/, url);
    t.ok(res.headers['strict-transport-security'], url);
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url);
    t.notOk(res.headers['x-powered-by']);
  }
});

t.test('CORS only for the configured origins', async (t) => {
  const none = await setup(t);
  const plain = await none.gateway.inject({
    method: 'OPTIONS',
    url: '/api/v1/auth/send-code',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  });
  t.notOk(plain.headers['access-control-allow-origin'], 'no CORS unless configured');

  const { gateway } = await setup(t, { CORS_ORIGINS: 'https://app.example' });
  const preflight = await gateway.inject({
    method: 'OPTIONS',
    url: '/api/v1/auth/send-code',
    headers: {
      origin: 'https://app.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  });
  t.equal(preflight.statusCode, 204);
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
  const other = await gateway.inject({
    method: 'OPTIONS',
    url: '/api/v1/auth/send-code',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  t.notOk(other.headers['access-control-allow-origin']);
  const noPreflight = await gateway.inject({ method: 'OPTIONS', url: '/api/v1/auth/send-code' });
  t.ok(
    noPreflight.statusCode < 400 ||
      noPreflight.headers['content-type']?.toString().startsWith('application/problem+json'),
    `an OPTIONS that is no preflight is no plain-text refusal (${noPreflight.statusCode} ${noPreflight.body})`,
  );
  const simple = await gateway.inject({
    method: 'GET',
    url: '/api/v1/profile',
    headers: { origin: 'https://app.example' },
  });
  t.equal(simple.headers['access-control-allow-origin'], 'https://app.example');
  t.match(simple.headers['access-control-expose-headers'], /x-request-id/);
});

t.test('docs: the merged document from the services, and 503 while none can be fetched', async (t) => {
  const { gateway } = await setup(t);
  const json = await gateway.inject({ method: 'GET', url: '/docs/json' });
  t.equal(json.statusCode, 200);
  t.ok(json.json().paths['/api/v1/profile']);
  t.notOk(json.json().paths['/internal/x']);
  const page = await gateway.inject({ method: 'GET', url: '/docs/' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);

  const lonely = await buildApp(testConfig({ AUTH_URL: 'http://127.0.0.1:1', REFERRAL_URL: 'http://127.0.0.1:1' }));
  t.teardown(() => lonely.close());
  const unavailable = await lonely.inject({ method: 'GET', url: '/docs/json' });
  t.equal(unavailable.statusCode, 503);
  t.equal(unavailable.json().code, 'service_unavailable');
});
