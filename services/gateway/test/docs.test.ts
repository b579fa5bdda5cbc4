import t, { type Test } from 'tap';
import Fastify from 'fastify';
import { gunzipSync } from 'node:zlib';
import { eventually, LogCapture, testConfig } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import { DocsCache } from '../src/docs.js';

const answers = { 200: { description: 'ok' }, 400: { description: 'refused' } };

/** Stand-in services that publish only their OpenAPI documents. */
async function services(t: Test): Promise<{ auth: string; referral: string }> {
  const documents = {
    auth: {
      '/api/v1/auth/send-code': { post: { summary: 'send', security: [], responses: answers } },
      '/compat/seed1/auth/send-code': {
        post: { summary: 'Отправка кода', deprecated: true, security: [], responses: answers },
      },
      '/compat/seed1/auth/verify': {
        post: { summary: 'Верификация', deprecated: true, security: [], responses: answers },
      },
      '/api/v1/auth/send_code/': { post: { summary: 'seed2 send', deprecated: true, responses: answers } },
      '/internal/v1/x': { post: { responses: answers } },
    },
    referral: {
      '/api/v1/profile': { get: { summary: 'profile', security: [{ bearerAuth: [] }], responses: answers } },
      '/compat/seed1/profile': {
        get: { summary: 'Профиль', deprecated: true, security: [{ bearerAuth: [] }], responses: answers },
      },
      '/api/v1/users/current_user': { get: { summary: 'seed2 me', deprecated: true, responses: answers } },
    },
  };
  const urls: Record<string, string> = {};
  for (const [name, paths] of Object.entries(documents)) {
    const app = Fastify();
    app.get('/openapi.json', async () => ({ openapi: '3.1.0', info: { title: name, version: '1' }, paths }));
    app.get('/health/ready', async () => ({ status: 'ok', checks: {} }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.teardown(() => app.close());
    const address = app.server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    urls[name] = `http://127.0.0.1:${address.port}`;
  }
  return { auth: urls['auth']!, referral: urls['referral']! };
}

async function setup(t: Test, env: Record<string, string> = {}) {
  const { auth, referral } = await services(t);
  const gateway = await buildApp(testConfig({ AUTH_URL: auth, REFERRAL_URL: referral, ...env }));
  t.teardown(() => gateway.close());
  return gateway;
}

t.test('GET /api/v1/schema/ (slash optional) is the merged document of /docs/json', async (t) => {
  const gateway = await setup(t);
  const docs = await gateway.inject({ method: 'GET', url: '/docs/json' });
  for (const url of ['/api/v1/schema/', '/api/v1/schema']) {
    const res = await gateway.inject({ method: 'GET', url });
    t.equal(res.statusCode, 200, url);
    t.match(res.headers['content-type'], /^application\/json/);
    t.same(res.json(), docs.json(), `${url} is the same document`);
  }
  const paths = Object.keys(docs.json().paths);
  t.same(
    paths.sort(),
    [
      '/api/auth/send-code/',
      '/api/auth/verify/',
      '/api/profile/',
      '/api/v1/auth/send-code',
      '/api/v1/auth/send_code/',
      '/api/v1/profile',
      '/api/v1/users/current_user',
    ].sort(),
    "the compat operations under the first seed's paths; the second seed's as documented; no /compat or /internal",
  );
  t.same(docs.json().servers, [{ url: '/', description: 'This gateway' }]);
  t.equal(docs.json().paths['/api/auth/send-code/'].post.summary, "Отправка кода (first seed's path)");
});

t.test("LEGACY_PATHS=off: the documents leave out both seeds' paths", async (t) => {
  const gateway = await setup(t, { LEGACY_PATHS: 'off' });
  for (const url of ['/docs/json', '/api/v1/schema/']) {
    const res = await gateway.inject({ method: 'GET', url });
    t.same(Object.keys(res.json().paths).sort(), ['/api/v1/auth/send-code', '/api/v1/profile'], url);
    t.notOk(
      res.json().tags.some((tag: { name: string }) => tag.name === 'legacy'),
      'no legacy tag',
    );
  }
  const page = await gateway.inject({ method: 'GET', url: '/redoc' });
  t.equal(page.statusCode, 200, 'the docs themselves stay');
});

t.test('the schema is a 503 problem while no service document can be fetched', async (t) => {
  const gateway = await buildApp(testConfig({ AUTH_URL: 'http://127.0.0.1:1', REFERRAL_URL: 'http://127.0.0.1:1' }));
  t.teardown(() => gateway.close());
  const res = await gateway.inject({ method: 'GET', url: '/api/v1/schema/' });
  t.equal(res.statusCode, 503);
  t.match(res.headers['content-type'], /^application\/problem\+json/);
  t.equal(res.json().code, 'service_unavailable');
  t.ok(res.headers['retry-after']);
});

t.test('ReDoc pages: /redoc and /api/v1/redoc/, scripts of their own origin only', async (t) => {
  const gateway = await setup(t);
  for (const url of ['/redoc', '/redoc/', '/api/v1/redoc', '/api/v1/redoc/']) {
    const res = await gateway.inject({ method: 'GET', url });
    t.equal(res.statusCode, 200, url);
    t.match(res.headers['content-type'], /^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    t.match(csp, "script-src 'self'", `${url}: scripts only from the gateway`);
    t.match(csp, "connect-src 'self'");
    t.notMatch(csp, /https?:|unsafe-eval/, 'no other host, no eval');
    t.match(res.headers['cache-control'], /max-age=\d+/);
    t.notMatch(res.body, /https?:\/\//, 'the page names no host');
    t.notMatch(res.body, /<script>/, 'no inline script');
    t.match(res.body, '<script src="/redoc/redoc.standalone.js"></script>');
    t.match(res.body, '<script src="/redoc/init.js"></script>');
  }
  const init = await gateway.inject({ method: 'GET', url: '/redoc/init.js' });
  t.equal(init.statusCode, 200);
  t.match(init.headers['content-type'], /^text\/javascript/);
  t.match(init.body, 'Redoc.init("/api/v1/schema/"');
  t.notMatch(init.body, /https?:\/\//);
});

t.test("ReDoc's bundle: from the redoc package, no outside URL it would load, cacheable, gzipped", async (t) => {
  const gateway = await setup(t);
  const plain = await gateway.inject({ method: 'GET', url: '/redoc/redoc.standalone.js' });
  t.equal(plain.statusCode, 200);
  t.match(plain.headers['content-type'], /^text\/javascript/);
  t.ok(plain.body.length > 500_000, 'the whole standalone bundle');
  t.match(plain.body, 'Redoc');
  t.notMatch(plain.body, 'cdn.redoc.ly', "the sidebar logo no longer comes from Redocly's CDN");
  t.notMatch(plain.body, /fonts\.(googleapis|gstatic)\.com/, 'no web fonts');
  t.notMatch(plain.body, 'sourceMappingURL=redoc.standalone.js.map', 'no map to look for');
  t.equal(plain.headers['cache-control'], 'public, max-age=86400');
  t.equal(plain.headers['vary'], 'accept-encoding');
  t.notOk(plain.headers['content-encoding']);
  const etag = plain.headers['etag'];
  t.match(etag, /^"[A-Za-z0-9_-]+"$/);

  const zipped = await gateway.inject({
    method: 'GET',
    url: '/redoc/redoc.standalone.js',
    headers: { 'accept-encoding': 'gzip, deflate, br' },
  });
  t.equal(zipped.headers['content-encoding'], 'gzip');
  t.ok(zipped.rawPayload.length < plain.rawPayload.length / 2, 'gzip at least halves it');
  t.same(gunzipSync(zipped.rawPayload), plain.rawPayload, 'the same script');
  t.equal(zipped.headers['etag'], etag);

  for (const ifNoneMatch of [String(etag), `W/${String(etag)}`, `"other", ${String(etag)}`]) {
    const again = await gateway.inject({
      method: 'GET',
      url: '/redoc/redoc.standalone.js',
      headers: { 'if-none-match': ifNoneMatch },
    });
    t.equal(again.statusCode, 304, `If-None-Match: ${ifNoneMatch}`);
    t.equal(again.rawPayload.length, 0);
  }
  const changed = await gateway.inject({
    method: 'GET',
    url: '/redoc/redoc.standalone.js',
    headers: { 'if-none-match': '"other"' },
  });
  t.equal(changed.statusCode, 200);

  const license = await gateway.inject({ method: 'GET', url: '/redoc/redoc.standalone.js.LICENSE.txt' });
  t.equal(license.statusCode, 200, "the bundle's license notices, which it names");
  t.match(license.headers['content-type'], /^text\/plain/);

  for (const url of ['/redoc/nope.js', '/redoc/..%2Fpackage.json', '/redoc/redoc.standalone.js.map']) {
    const missing = await gateway.inject({ method: 'GET', url });
    t.equal(missing.statusCode, 404, url);
    t.match(missing.headers['content-type'], /^application\/problem\+json/);
  }
});

t.test("ReDoc's files: names of Object.prototype's members are 404 problems, not 500s", async (t) => {
  const logs = new LogCapture();
  const gateway = await buildApp(
    testConfig({ LOG_LEVEL: 'info', AUTH_URL: 'http://127.0.0.1:1', REFERRAL_URL: 'http://127.0.0.1:1' }),
    { logStream: logs },
  );
  t.teardown(() => gateway.close());
  const names = ['constructor', '__proto__', '%5F%5Fproto%5F%5F', 'toString', 'hasOwnProperty', 'valueOf'];
  for (const name of names) {
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await gateway.inject({ method, url: `/redoc/${name}` });
      t.equal(res.statusCode, 404, `${method} /redoc/${name}`);
      t.match(res.headers['content-type'], /^application\/problem\+json/);
      if (method === 'GET') t.equal(res.json().code, 'not_found');
    }
  }
  const loud = logs.lines.filter((line) => Number(line['level']) >= 50);
  t.same(loud, [], 'nothing logged at error level');
});

t.test('the docs routes never log below the configured LOG_LEVEL', async (t) => {
  // With no service up, /docs/json is a 503 and its request logs a warning ("dependency unavailable").
  // No active probes: their own warnings about the absent services would be counted too.
  const down = { AUTH_URL: 'http://127.0.0.1:1', REFERRAL_URL: 'http://127.0.0.1:1', GATEWAY_HEALTH_INTERVAL_MS: '0' };
  const fetchDocs = async (level: string) => {
    const logs = new LogCapture();
    const gateway = await buildApp(testConfig({ LOG_LEVEL: level, ...down }), { logStream: logs });
    try {
      for (const url of ['/docs', '/docs/json', '/docs/static/index.html'])
        await gateway.inject({ method: 'GET', url });
    } finally {
      await gateway.close();
    }
    return logs.lines.map((line) => Number(line['level']));
  };
  t.same(await fetchDocs('silent'), [], 'LOG_LEVEL=silent: not a line');
  t.same(await fetchDocs('error'), [], 'LOG_LEVEL=error: no warning');
  t.same(await fetchDocs('warn'), [40], 'LOG_LEVEL=warn: the warning');
  t.same(await fetchDocs('debug'), [40], 'LOG_LEVEL=debug: still no access lines for the docs themselves');
});

t.test('a document already fetched is served at once while a service does not answer', async (t) => {
  let silent = false;
  const held: Array<() => void> = [];
  const app = Fastify();
  app.get('/openapi.json', async (_request, reply) => {
    // Gone quiet: the request is taken and never answered (until the teardown).
    if (silent) await new Promise<void>((resolve) => held.push(resolve));
    return reply.send({ openapi: '3.1.0', info: { title: 'auth', version: '1' }, paths: {} });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    for (const release of held) release();
    await app.close();
  });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  // Stale at once, and a minute allowed for each fetch.
  const cache = new DocsCache([() => [base]], 60_000, true, 0);
  await cache.refreshIfStale();
  const first = cache.current();

  silent = true;
  const outcome = await Promise.race([
    cache.refreshIfStale().then(() => 'served'),
    new Promise((resolve) => setTimeout(resolve, 10_000, 'waited for the service')),
  ]);
  t.equal(outcome, 'served');
  t.equal(cache.current(), first, 'the document fetched before');
  await eventually('the refresh to reach the silent service', () => held.length > 0, 10_000);
});
