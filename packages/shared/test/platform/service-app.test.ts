import t, { type Test } from 'tap';
import { Type } from 'typebox';
import { AppError } from '../../src/contracts/errors.js';
import { quietRouteLogLevel } from '../../src/platform/logger.js';
import { registerOpenApi } from '../../src/platform/openapi.js';
import { createServiceApp } from '../../src/platform/service-app.js';
import { LogCapture, testConfig } from '../../src/testing/index.js';

function build(readiness = {}) {
  const logs = new LogCapture();
  const app = createServiceApp({
    service: 'demo',
    config: testConfig({ LOG_LEVEL: 'info' }),
    logStream: logs,
    readiness,
  });
  app.post(
    '/echo',
    { schema: { body: Type.Object({ name: Type.String({ minLength: 1 }), age: Type.Optional(Type.Integer()) }) } },
    async (request) => request.body,
  );
  app.get('/boom', async () => {
    throw new Error('password=hunter2 at db.internal:5432');
  });
  app.get('/limited', async () => {
    throw new AppError('rate_limited', 'Slow down.', { retryAfter: 42 });
  });
  app.get('/logs-a-secret', async (request) => {
    request.log.info({ req: { headers: { authorization: 'Bearer abc.def.ghi' } }, body: { code: '1234' } }, 'tempting');
    // Objects that no serializer touches: only the redaction stands between them and the log.
    request.log.info(
      {
        headers: {
          authorization: 'Bearer h1.h2.h3',
          cookie: 'refstack_access=c1.c2.c3',
          'x-internal-token': 'internal-secret-1',
        },
        body: { code: '918273', refresh: 'refresh-secret-1', token: 'token-secret-1' },
        session: {
          otp: '554433',
          refresh: 'refresh-secret-2',
          access: 'access-secret-1',
          token: 'token-secret-2',
          tokens: { access: 'access-secret-2' },
          secret: 'secret-1',
          internalToken: 'internal-secret-2',
          privateKeyPem: 'pem-secret-1',
          hmacSecret: 'hmac-secret-1',
        },
      },
      'more tempting',
    );
    return { ok: true };
  });
  t.teardown(() => app.close());
  return { app, logs };
}

function assertProblem(
  t: Test,
  res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown },
  status: number,
  code: string,
) {
  t.equal(res.statusCode, status);
  t.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  t.match(body, { type: `urn:refstack:problem:${code}`, status, code, title: String, detail: String });
  return body;
}

t.test('unknown routes are 404 problems', async (t) => {
  const { app } = build();
  const res = await app.inject({ method: 'GET', url: '/nope' });
  assertProblem(t, res, 404, 'not_found');
});

t.test('an oversize body is 413', async (t) => {
  const { app } = build();
  const res = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'x'.repeat(70 * 1024) }),
  });
  assertProblem(t, res, 413, 'payload_too_large');
});

t.test('a body that is not JSON is 415', async (t) => {
  const { app } = build();
  const res = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'text/plain' },
    payload: 'name=x',
  });
  assertProblem(t, res, 415, 'unsupported_media_type');
});

t.test('malformed and empty JSON is 400 malformed_json', async (t) => {
  const { app } = build();
  for (const payload of ['{"name":', '', '{"__proto__": {"x": 1}}']) {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.headers['content-type'], /problem\+json/);
  }
  const res = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/json' },
    payload: '{"name":',
  });
  assertProblem(t, res, 400, 'malformed_json');
});

t.test('schema violations are 400 validation_failed with field errors', async (t) => {
  const { app } = build();
  const missing = assertProblem(
    t,
    await app.inject({ method: 'POST', url: '/echo', payload: { age: 3 } }),
    400,
    'validation_failed',
  );
  t.same(missing['errors'], [{ field: 'name', message: "must have required property 'name'" }]);
  const wrongType = assertProblem(
    t,
    await app.inject({ method: 'POST', url: '/echo', payload: { name: 'a', age: 'old' } }),
    400,
    'validation_failed',
  );
  t.match(wrongType['errors'], [{ field: 'age' }]);
  const ok = await app.inject({ method: 'POST', url: '/echo', payload: { name: 'ann' } });
  t.equal(ok.statusCode, 200);
});

t.test('unexpected errors are 500 without internals, and logged', async (t) => {
  const { app, logs } = build();
  const res = await app.inject({ method: 'GET', url: '/boom' });
  const body = assertProblem(t, res, 500, 'internal_error');
  t.notMatch(res.body, /hunter2|db\.internal|at /);
  t.notOk('stack' in body);
  t.ok(
    logs.lines.some((l) => l['level'] === 50 && l['request_id'] === res.headers['x-request-id']),
    'the failure is logged with the request id',
  );
});

t.test('429 carries Retry-After and retry_after', async (t) => {
  const { app } = build();
  const res = await app.inject({ method: 'GET', url: '/limited' });
  const body = assertProblem(t, res, 429, 'rate_limited');
  t.equal(res.headers['retry-after'], '42');
  t.equal(body['retry_after'], 42);
});

t.test('request ids are echoed or generated, and in every log line of the request', async (t) => {
  const { app, logs } = build();
  const echoed = await app.inject({ method: 'GET', url: '/boom', headers: { 'x-request-id': 'abc-123' } });
  t.equal(echoed.headers['x-request-id'], 'abc-123');
  const lines = logs.lines.filter((l) => l['request_id'] === 'abc-123');
  t.ok(lines.length >= 2, 'the error and the completion line');
  t.ok(
    logs.lines
      .filter((l) => 'req' in l || l['msg'] === 'request completed')
      .every((l) => typeof l['request_id'] === 'string'),
  );

  const generated = await app.inject({ method: 'GET', url: '/health/live' });
  t.match(generated.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  const hostile = await app.inject({
    method: 'GET',
    url: '/health/live',
    headers: { 'x-request-id': 'evil\nline' + 'x'.repeat(300) },
  });
  t.match(hostile.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an unsafe id is replaced');
});

t.test('quietSuccess logs answered requests at debug and failures at info', async (t) => {
  const logs = new LogCapture();
  const app = createServiceApp({
    service: 'edge',
    config: testConfig({ LOG_LEVEL: 'info' }),
    logStream: logs,
    quietSuccess: true,
  });
  app.get('/ok', async () => ({ ok: true }));
  app.get('/fail', async () => {
    throw new Error('boom');
  });
  t.teardown(() => app.close());
  await app.inject({ method: 'GET', url: '/ok', headers: { 'x-request-id': 'quiet-1' } });
  await app.inject({ method: 'GET', url: '/fail', headers: { 'x-request-id': 'loud-1' } });
  t.notOk(
    logs.lines.some((l) => l['request_id'] === 'quiet-1'),
    'no info line for a success',
  );
  t.ok(
    logs.lines.some((l) => l['request_id'] === 'loud-1' && l['msg'] === 'request completed'),
    'a failure is logged',
  );
});

t.test('tokens, codes and authorization headers are redacted in logs', async (t) => {
  const { app, logs } = build();
  await app.inject({ method: 'GET', url: '/logs-a-secret' });
  t.notMatch(logs.text(), /abc\.def\.ghi|"1234"/);
  t.match(logs.text(), /\[redacted\]/);
  for (const secret of [
    'h1.h2.h3',
    'c1.c2.c3',
    'internal-secret',
    '918273',
    'refresh-secret',
    'token-secret',
    '554433',
    'access-secret',
    'secret-1',
    'pem-secret',
    'hmac-secret',
  ]) {
    t.notMatch(logs.text(), secret, `${secret} is redacted`);
  }
});

t.test('a trailing slash is accepted', async (t) => {
  const { app } = build();
  t.equal((await app.inject({ method: 'POST', url: '/echo/', payload: { name: 'a' } })).statusCode, 200);
  t.equal((await app.inject({ method: 'GET', url: '/health/live/' })).statusCode, 200);
});

t.test('readiness reports each check and fails when one is down', async (t) => {
  const { app } = build({
    postgres: async () => undefined,
    redis: async () => Promise.reject(new Error('connect ECONNREFUSED')),
  });
  const res = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(res.statusCode, 503);
  t.match(res.json(), {
    status: 'unavailable',
    checks: { postgres: { status: 'up' }, redis: { status: 'down', error: /ECONNREFUSED/ } },
  });
  t.equal(
    (await app.inject({ method: 'GET', url: '/health/live' })).statusCode,
    200,
    'liveness does not depend on stores',
  );
});

t.test('metrics are Prometheus text with the request histogram', async (t) => {
  const { app } = build();
  await app.inject({ method: 'POST', url: '/echo', payload: { name: 'a' } });
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/plain/);
  t.match(res.body, /http_request_duration_seconds_count\{[^}]*route="\/echo"[^}]*\} 1/);
  t.match(res.body, /process_cpu_user_seconds_total/);
});

t.test('routes called all day log from warn up, and never below LOG_LEVEL', async (t) => {
  t.equal(quietRouteLogLevel('debug'), 'warn');
  t.equal(quietRouteLogLevel('info'), 'warn');
  t.equal(quietRouteLogLevel('error'), 'error');
  t.equal(quietRouteLogLevel('silent'), 'silent');
  t.equal(quietRouteLogLevel('no-such-level'), 'warn');
  for (const level of ['info', 'error', 'silent']) {
    const app = createServiceApp({
      service: 'demo',
      config: testConfig({ LOG_LEVEL: level }),
      logStream: new LogCapture(),
    });
    await registerOpenApi(app, { title: 'demo', description: 'demo' });
    const seen = new Map<string, string>();
    app.addHook('onRequest', async (request) => {
      seen.set(request.url, request.log.level);
    });
    t.teardown(() => app.close());
    for (const url of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
      await app.inject({ method: 'GET', url });
      t.equal(seen.get(url), level === 'info' ? 'warn' : level, `LOG_LEVEL=${level}: ${url}`);
    }
  }
});
