import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { testConfig, UNREACHABLE_REDIS_URL } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';

const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  .privateKey.export({ format: 'pem', type: 'pkcs8' })
  .toString();

t.test('ready when Redis answers', async (t) => {
  const app = await buildApp(testConfig({ JWT_PRIVATE_KEY: pem }));
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  t.match(ready.json(), { status: 'ok', service: 'auth', checks: { redis: { status: 'up' } } });
});

t.test('not ready, but live, when Redis is unreachable', async (t) => {
  const app = await buildApp(testConfig({ REDIS_URL: UNREACHABLE_REDIS_URL, JWT_PRIVATE_KEY: pem }));
  t.teardown(() => app.close());
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 503);
  t.match(ready.json(), { status: 'unavailable', checks: { redis: { status: 'down' } } });
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
});

t.test('send-code answers 503, not 500 or a hang, while Redis is unreachable', async (t) => {
  const app = await buildApp(testConfig({ REDIS_URL: UNREACHABLE_REDIS_URL, JWT_PRIVATE_KEY: pem }));
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/send-code', payload: { phone: '+79123456789' } });
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'service_unavailable');
});

t.test('without a configured key, start-up needs Redis and says so', async (t) => {
  await t.rejects(buildApp(testConfig({ REDIS_URL: UNREACHABLE_REDIS_URL })), {
    name: 'StoreUnreachableError',
    message: /redis:\/\/127\.0\.0\.1:1/,
  });
});

t.test('unknown routes are 404 problems with a request id', async (t) => {
  const app = await buildApp(testConfig({ JWT_PRIVATE_KEY: pem }));
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/api/v1/auth/nope', headers: { 'x-request-id': 'req-1' } });
  t.equal(res.statusCode, 404);
  t.match(res.headers['content-type'], /^application\/problem\+json/);
  t.equal(res.json().code, 'not_found');
  t.equal(res.headers['x-request-id'], 'req-1');
});
