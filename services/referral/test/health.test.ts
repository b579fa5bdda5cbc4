import t from 'tap';
import { sql } from 'kysely';
import { testConfig, UNREACHABLE_POSTGRES_URL } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import { buildReferralTestApp as buildTestApp } from './referral-test-app.js';

t.test('live and ready with a real database', async (t) => {
  const { app } = await buildTestApp(t);
  const live = await app.inject({ method: 'GET', url: '/health/live' });
  t.equal(live.statusCode, 200);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  t.match(ready.json(), { status: 'ok', service: 'referral', checks: { postgres: { status: 'up' } } });
});

t.test('readiness fails, and liveness holds, when Postgres is unreachable', async (t) => {
  const app = await buildApp(testConfig({ DATABASE_URL: UNREACHABLE_POSTGRES_URL }));
  t.teardown(() => app.close());
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 503);
  t.match(ready.json(), { status: 'unavailable', checks: { postgres: { status: 'down', error: String } } });
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
});

t.test('migrations create the schema with its constraints and indexes', async (t) => {
  const { db } = await buildTestApp(t);
  const indexes = await sql<{
    indexname: string;
  }>`SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY indexname`.execute(db);
  t.same(
    indexes.rows.map((r) => r.indexname),
    [
      'users_email_lower_key',
      'users_first_name_prefix_idx',
      'users_invite_code_key',
      'users_invitees_idx',
      'users_last_name_prefix_idx',
      'users_phone_key',
      'users_phone_trgm_idx',
      'users_pkey',
    ],
  );
  const constraints = await sql<{
    conname: string;
  }>`SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c' ORDER BY conname`.execute(
    db,
  );
  t.ok(constraints.rows.some((r) => r.conname === 'users_not_self_invited'));
  t.ok(constraints.rows.some((r) => r.conname === 'users_activation_complete'));
});

t.test('unknown routes and methods are 404 problems', async (t) => {
  const { app } = await buildTestApp(t);
  for (const [method, url] of [
    ['GET', '/nope'],
    ['DELETE', '/health/live'],
    ['GET', '/internal'],
  ] as const) {
    const res = await app.inject({ method, url });
    t.equal(res.statusCode, 404, `${method} ${url}`);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.equal(res.json().code, 'not_found');
  }
});

t.test('metrics answer in Prometheus text', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.body, /service="referral"/);
});
