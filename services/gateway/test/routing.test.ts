import t, { type Test } from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import { testConfig } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';

interface Seen {
  upstream: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A stand-in upstream that records what reached it and answers with it. */
async function fakeUpstream(t: Test, name: string): Promise<{ url: string; seen: Seen[]; app: FastifyInstance }> {
  const seen: Seen[] = [];
  const app = Fastify();
  // Kept as the text that arrived, so a test can compare it byte for byte.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) =>
    done(null, body),
  );
  app.get('/health/ready', async () => ({ status: 'ok', checks: { store: { status: 'up' } } }));
  // An answer that arrives in many chunks, with a repeated header.
  app.get('/api/v1/users/large', async (_request, reply) => {
    void reply
      .code(201)
      .header('cache-control', 'no-store')
      .header('set-cookie', ['a=1; Path=/', 'b=2; Path=/'])
      .header('link', ['</a>; rel=a', '</b>; rel=b']);
    return { items: Array.from({ length: 10_000 }, (_, i) => ({ i, phone: `+7912${String(i).padStart(7, '0')}` })) };
  });
  app.all('/*', async (request) => {
    const record = {
      upstream: name,
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: request.body ?? null,
    };
    seen.push(record);
    return record;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, seen, app };
}

async function setup(t: Test, env: Record<string, string> = {}) {
  const auth = await fakeUpstream(t, 'auth');
  const referral = await fakeUpstream(t, 'referral');
  const gateway = await buildApp(testConfig({ AUTH_URL: auth.url, REFERRAL_URL: referral.url, ...env }));
  t.teardown(() => gateway.close());
  return { gateway, auth, referral };
}

t.test('public paths reach their service with path, query and body intact', async (t) => {
  const { gateway } = await setup(t);
  const cases: Array<[string, string, string, string]> = [
    ['POST', '/api/v1/auth/send-code', 'auth', '/api/v1/auth/send-code'],
    ['POST', '/api/v1/auth/verify/', 'auth', '/api/v1/auth/verify/'],
    ['GET', '/.well-known/jwks.json', 'auth', '/.well-known/jwks.json'],
    ['GET', '/api/v1/profile', 'referral', '/api/v1/profile'],
    ['PATCH', '/api/v1/profile', 'referral', '/api/v1/profile'],
    ['GET', '/api/v1/profile/invited?limit=5&cursor=abc', 'referral', '/api/v1/profile/invited?limit=5&cursor=abc'],
    ['GET', '/api/v1/users?search=%2B7912', 'referral', '/api/v1/users?search=%2B7912'],
    ['GET', '/api/v1/users/42', 'referral', '/api/v1/users/42'],
    // An account's life is run by auth; the rest of the profile stays with referral.
    ['DELETE', '/api/v1/profile', 'auth', '/api/v1/profile'],
    ['POST', '/api/v1/profile/phone', 'auth', '/api/v1/profile/phone'],
    ['GET', '/api/v1/profile/export', 'auth', '/api/v1/profile/export'],
    ['GET', '/api/v1/auth/sessions', 'auth', '/api/v1/auth/sessions'],
    ['DELETE', '/api/v1/auth/sessions/abc', 'auth', '/api/v1/auth/sessions/abc'],
  ];
  for (const [method, url, upstream, path] of cases) {
    const payload = method === 'GET' ? undefined : { phone: '+79123456789' };
    const res = await gateway.inject({ method: method as 'GET', url, payload });
    t.equal(res.statusCode, 200, `${method} ${url}`);
    t.match(res.json(), { upstream, method, url: path }, `${method} ${url}`);
    if (payload) t.same(res.json().body, payload, 'the body passes through');
  }
});

t.test(
  "providers' delivery receipts reach auth byte for byte, form or JSON, with their signature headers",
  async (t) => {
    const { gateway, auth } = await setup(t);
    // A signature covers the exact bytes: the order of fields and the encoding must survive.
    const form = 'MessageStatus=delivered&MessageSid=SM0123&To=%2B447400123456&Body=a+b%0Ac';
    const twilio = await gateway.inject({
      method: 'POST',
      url: '/webhooks/sms/twilio?x=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'c2lnbmF0dXJl' },
      payload: form,
    });
    t.equal(twilio.statusCode, 200);
    const seen = auth.seen.at(-1);
    t.match(seen, { method: 'POST', url: '/webhooks/sms/twilio?x=1' });
    t.equal(seen?.headers['x-twilio-signature'], 'c2lnbmF0dXJl');
    t.equal(seen?.body, form, 'the form arrived as sent');
    const report = '{"request_id":"r1","delivery_status":{"status":"delivered","updated_at":1}}';
    const telegram = await gateway.inject({
      method: 'POST',
      url: '/webhooks/sms/telegram',
      headers: { 'content-type': 'application/json', 'x-request-timestamp': '1', 'x-request-signature': 'ab' },
      payload: report,
    });
    t.equal(telegram.statusCode, 200);
    t.same(auth.seen.at(-1)?.body, JSON.parse(report));
    t.equal(auth.seen.at(-1)?.headers['x-request-signature'], 'ab');
  },
);

t.test('a large answer arrives whole, with its status and repeated headers', async (t) => {
  const { gateway, referral } = await setup(t);
  const direct = await fetch(`${referral.url}/api/v1/users/large`);
  const expected = await direct.text();
  t.ok(expected.length > 200_000, 'big enough to arrive in several chunks');
  const res = await gateway.inject({ method: 'GET', url: '/api/v1/users/large' });
  t.equal(res.statusCode, 201);
  t.equal(res.body, expected);
  t.equal(res.headers['cache-control'], 'no-store');
  t.same(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  t.same(res.headers['link'], ['</a>; rel=a', '</b>; rel=b'], 'a repeated header stays repeated');
  t.equal(res.headers['content-length'], String(Buffer.byteLength(expected)));
  const head = await gateway.inject({ method: 'HEAD', url: '/api/v1/users/large' });
  t.equal(head.body, '', 'a HEAD answer has no body');
  t.equal(head.headers['content-length'], String(Buffer.byteLength(expected)), "but its GET's length");
});

const FIRST_SEED_CASES: Array<[string, string, string, string]> = [
  ['POST', '/api/auth/send-code/', 'auth', '/compat/seed1/auth/send-code'],
  ['POST', '/api/auth/verify/', 'auth', '/compat/seed1/auth/verify'],
  ['GET', '/api/profile/', 'referral', '/compat/seed1/profile'],
  ['PUT', '/api/profile/set-invite/', 'referral', '/compat/seed1/profile/set-invite'],
];

/** The second seed's paths and the upstream that serves each, as they arrive there. */
const SECOND_SEED_CASES: Array<[string, string, string]> = [
  ['POST', '/api/v1/auth/send_code', 'auth'],
  ['POST', '/api/v1/auth/send_code/', 'auth'],
  ['POST', '/api/v1/auth/jwt/get_by_phone', 'auth'],
  ['POST', '/api/v1/auth/jwt/get_by_phone/', 'auth'],
  ['POST', '/api/v1/auth/jwt/refresh', 'auth'],
  ['POST', '/api/v1/auth/jwt/refresh/', 'auth'],
  ['POST', '/api/v1/auth/jwt/verify', 'auth'],
  ['POST', '/api/v1/auth/jwt/verify/', 'auth'],
  ['GET', '/api/v1/users/current_user', 'referral'],
  ['GET', '/api/v1/users/current_user/', 'referral'],
];

t.test("the first seed's paths map to the compat routes with their methods", async (t) => {
  const { gateway } = await setup(t);
  for (const [method, url, upstream, path] of FIRST_SEED_CASES) {
    const res = await gateway.inject({
      method: method as 'GET',
      url,
      headers: {
        'x-csrftoken': 'T5r2yE6peDFIy2J3FPjVFruKpyvjHxXhq7cyUaR74nhtYEbX4OR0DQb7A7TaZFnM',
        accept: 'application/json',
      },
      payload: method === 'GET' ? undefined : { phone: '79346559036' },
    });
    t.equal(res.statusCode, 200, `${method} ${url}`);
    t.match(res.json(), { upstream, method, url: path });
  }
  const query = await gateway.inject({ method: 'GET', url: '/api/profile/?x=1' });
  t.match(query.json(), { url: '/compat/seed1/profile?x=1' }, 'the query string goes along');
  const wrongMethod = await gateway.inject({ method: 'GET', url: '/api/auth/send-code/' });
  t.equal(wrongMethod.statusCode, 404);
});

t.test("LEGACY_PATHS=on (the default): the second seed's paths reach their service as they are", async (t) => {
  const { gateway } = await setup(t, { LEGACY_PATHS: 'on' });
  for (const [method, url, upstream] of SECOND_SEED_CASES) {
    const res = await gateway.inject({ method: method as 'GET', url, payload: method === 'GET' ? undefined : {} });
    t.equal(res.statusCode, 200, `${method} ${url}`);
    t.match(res.json(), { upstream, method, url }, `${method} ${url}`);
  }
});

t.test("LEGACY_PATHS=off: the seeds' paths are 404 problems and never forwarded; /api/v1 stays", async (t) => {
  const { gateway, auth, referral } = await setup(t, { LEGACY_PATHS: 'off' });
  const cases = [
    ...FIRST_SEED_CASES.map(([method, url]) => [method, url] as const),
    ...SECOND_SEED_CASES.map(([method, url]) => [method, url] as const),
    // Any method, and the spellings a router decodes to the same path.
    ['GET', '/api/v1/auth/send_code'],
    ['DELETE', '/api/v1/users/current_user'],
    ['POST', '/api/v1/auth/send%5Fcode'],
    ['GET', '/api/v1/users/current%5Fuser/?x=1'],
    ['POST', '/api/v1/auth/jwt/verify?token=x'],
  ] as const;
  for (const [method, url] of cases) {
    const res = await gateway.inject({ method, url, payload: method === 'GET' ? undefined : {} });
    t.equal(res.statusCode, 404, `${method} ${url}`);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.equal(res.json().code, 'not_found');
  }
  t.equal(auth.seen.length + referral.seen.length, 0, 'nothing reached an upstream');

  for (const [method, url, upstream] of [
    ['POST', '/api/v1/auth/send-code', 'auth'],
    ['POST', '/api/v1/auth/token/verify', 'auth'],
    ['GET', '/api/v1/users/42', 'referral'],
    ['GET', '/api/v1/users/current_users', 'referral'],
  ] as const) {
    const res = await gateway.inject({ method, url, payload: method === 'GET' ? undefined : {} });
    t.match(res.json(), { upstream, url }, `${method} ${url} is still served`);
  }
});

t.test('internal and compat routes and unknown paths are 404 and never forwarded', async (t) => {
  const { gateway, auth, referral } = await setup(t);
  for (const url of [
    '/internal/v1/users/sign-in',
    '/internal/',
    '/INTERNAL/v1/users/sign-in',
    '/compat/seed1/auth/send-code',
    '/compat/seed1/profile',
    '/compat/',
    '/compat',
    '/COMPAT/seed1/auth/verify',
    '/api/v2/profile',
    '/api/v1/profiles',
    '/',
  ]) {
    const res = await gateway.inject({ method: 'POST', url, payload: { phone: '+79123456789' } });
    t.equal(res.statusCode, 404, url);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.equal(res.json().code, 'not_found');
  }
  t.equal(auth.seen.length + referral.seen.length, 0, 'nothing reached an upstream');
});

t.test('request ids pass through to the upstream and back, or are made', async (t) => {
  const { gateway, referral } = await setup(t);
  const given = await gateway.inject({
    method: 'GET',
    url: '/api/v1/profile',
    headers: { 'x-request-id': 'client-42' },
  });
  t.equal(given.headers['x-request-id'], 'client-42');
  t.equal(referral.seen.at(-1)?.headers['x-request-id'], 'client-42');

  const made = await gateway.inject({ method: 'GET', url: '/api/v1/profile' });
  const id = made.headers['x-request-id'];
  t.match(id, /^[0-9a-f-]{36}$/);
  t.equal(referral.seen.at(-1)?.headers['x-request-id'], id, 'the upstream sees the same id');
});

t.test("a client's own X-Forwarded-For never reaches an upstream", async (t) => {
  const { gateway, auth } = await setup(t);
  await gateway.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    headers: {
      'x-forwarded-for': '203.0.113.9, 198.51.100.1',
      'x-real-ip': '203.0.113.9',
      forwarded: 'for=203.0.113.9',
      'x-forwarded-port': '443',
      'x-forwarded-prefix': '/admin',
      'true-client-ip': '203.0.113.9',
      'cf-connecting-ip': '203.0.113.9',
      'x-client-ip': '203.0.113.9',
      'x-original-url': '/internal/v1/users',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
    },
    payload: {},
  });
  const headers = auth.seen.at(-1)?.headers ?? {};
  t.equal(headers['x-forwarded-for'], '127.0.0.1', 'only the address the gateway saw');
  for (const name of [
    'x-real-ip',
    'forwarded',
    'x-forwarded-port',
    'x-forwarded-prefix',
    'true-client-ip',
    'cf-connecting-ip',
    'x-client-ip',
    'x-original-url',
    'proxy-authorization',
  ])
    t.notOk(headers[name], `${name} is not passed on`);
});

t.test(
  'headers the client names in Connection, and a client-sent service credential, never reach an upstream',
  async (t) => {
    const { gateway, auth } = await setup(t);
    const res = await gateway.inject({
      method: 'POST',
      url: '/api/v1/auth/send-code',
      headers: {
        connection: 'keep-alive, X-Secret, x-other',
        'x-secret': 'hop',
        'x-other': 'hop',
        'x-internal-token': 'forged',
        'x-kept': 'end-to-end',
      },
      payload: {},
    });
    t.equal(res.statusCode, 200);
    const headers = auth.seen.at(-1)?.headers ?? {};
    t.notOk(headers['x-secret'], 'a header named in Connection is hop-by-hop');
    t.notOk(headers['x-other']);
    t.notOk(headers['x-internal-token'], 'no client may present the service credential');
    t.equal(headers['x-kept'], 'end-to-end', 'other headers pass');
  },
);

t.test('X-Forwarded-For: the socket address is the client unless GATEWAY_TRUSTED_PROXIES names the peer', async (t) => {
  const spoofed = { 'x-forwarded-for': '203.0.113.9' };
  const send = (
    gateway: Awaited<ReturnType<typeof setup>>['gateway'],
    remoteAddress: string,
    headers: Record<string, string>,
  ) => gateway.inject({ method: 'POST', url: '/api/v1/auth/send-code', remoteAddress, headers, payload: {} });

  const untrusting = await setup(t);
  await send(untrusting.gateway, '198.51.100.7', spoofed);
  t.equal(
    untrusting.auth.seen.at(-1)?.headers['x-forwarded-for'],
    '198.51.100.7',
    'by default no peer is a proxy: the spoofed header is ignored',
  );

  const { gateway, auth } = await setup(t, { GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1' });
  await send(gateway, '198.51.100.7', spoofed);
  t.equal(
    auth.seen.at(-1)?.headers['x-forwarded-for'],
    '198.51.100.7',
    'an untrusted peer is the client, whatever it claims',
  );
  await send(gateway, '10.1.2.3', spoofed);
  t.equal(auth.seen.at(-1)?.headers['x-forwarded-for'], '203.0.113.9', 'a trusted balancer names the client');
  await send(gateway, '10.1.2.3', { 'x-forwarded-for': '203.0.113.66, 203.0.113.9' });
  t.equal(
    auth.seen.at(-1)?.headers['x-forwarded-for'],
    '203.0.113.9',
    "a client's spoofed entry before the real one buys nothing",
  );
  await send(gateway, '10.1.2.3', { 'x-forwarded-for': '203.0.113.9, 192.0.2.1' });
  t.equal(
    auth.seen.at(-1)?.headers['x-forwarded-for'],
    '203.0.113.9',
    'a chain of trusted proxies is walked to the first untrusted address',
  );
  await send(gateway, '10.1.2.3', {});
  t.equal(
    auth.seen.at(-1)?.headers['x-forwarded-for'],
    '10.1.2.3',
    'a trusted peer without the header is the client itself',
  );
  // Some balancers (Azure's) write the client's address with its source port.
  for (const [entry, client] of [
    ['203.0.113.9:5678', '203.0.113.9'],
    ['[2001:db8::1]:443', '2001:db8::1'],
  ]) {
    await send(gateway, '10.1.2.3', { 'x-forwarded-for': entry! });
    t.equal(
      auth.seen.at(-1)?.headers['x-forwarded-for'],
      client,
      `${entry} is the client ${client}, not a new one per port`,
    );
  }
  await send(gateway, '10.1.2.3', { 'x-forwarded-for': '203.0.113.9, 10.1.1.1:40000' });
  t.equal(
    auth.seen.at(-1)?.headers['x-forwarded-for'],
    '203.0.113.9',
    'a trusted balancer written with its port is walked past, not taken for the client',
  );
  await send(gateway, '10.1.2.3', { 'x-forwarded-for': 'garbage' });
  t.equal(
    auth.seen.at(-1)?.headers['x-forwarded-for'],
    '10.1.2.3',
    'a header naming no address leaves the balancer as the only address known',
  );
});

t.test('an upstream that is down is a 503 problem', async (t) => {
  const { gateway, auth } = await setup(t);
  await auth.app.close();
  const down = await gateway.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    payload: { phone: '+79123456789' },
  });
  t.equal(down.statusCode, 503);
  t.match(down.headers['content-type'], /^application\/problem\+json/);
  t.match(down.json(), { code: 'service_unavailable', status: 503 });
  t.ok(down.headers['retry-after']);
});

t.test('a slow upstream answer times out as 503', async (t) => {
  const slowApp = Fastify();
  slowApp.post(
    '/api/v1/auth/verify',
    async () => new Promise((resolve) => setTimeout(() => resolve({ late: true }), 3000)),
  );
  await slowApp.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => slowApp.close());
  const address = slowApp.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  const gateway = await buildApp(
    testConfig({ AUTH_URL: `http://127.0.0.1:${address.port}`, UPSTREAM_TIMEOUT_MS: '300' }),
  );
  t.teardown(() => gateway.close());
  const started = Date.now();
  const res = await gateway.inject({ method: 'POST', url: '/api/v1/auth/verify', payload: {} });
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'service_unavailable');
  t.ok(Date.now() - started < 2500, 'answered at the timeout, not when the upstream finished');
});

t.test('an oversize body is refused at the gateway', async (t) => {
  const { gateway, auth } = await setup(t);
  const res = await gateway.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    headers: { 'content-type': 'application/json' },
    payload: `{"phone":"${'9'.repeat(70 * 1024)}"}`,
  });
  t.equal(res.statusCode, 413);
  t.equal(res.json().code, 'payload_too_large');
  t.equal(auth.seen.length, 0);
});

t.test('readiness reports each upstream', async (t) => {
  const { gateway, referral } = await setup(t);
  const ok = await gateway.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ok.statusCode, 200);
  t.match(ok.json(), { status: 'ok', checks: { auth: { status: 'up' }, referral: { status: 'up' } } });
  await referral.app.close();
  const down = await gateway.inject({ method: 'GET', url: '/health/ready' });
  t.equal(down.statusCode, 503);
  t.match(down.json(), { checks: { auth: { status: 'up' }, referral: { status: 'down' } } });
});
