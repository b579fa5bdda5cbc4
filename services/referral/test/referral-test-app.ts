import type { FastifyInstance } from 'fastify';
import type { QueryConfig } from 'pg';
import { sql, type Kysely } from 'kysely';
import type { Profile } from '@refstack/shared/contracts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  LogCapture,
  SmsOutbox,
  TEST_REDIS_URL,
  testConfig,
  TestTokenIssuer,
  type Teardownable,
} from '@refstack/shared/testing';
import { closeRedis, connectRedis, Revocations } from '@refstack/shared/platform';
import { buildApp } from '../src/app.js';
import { JwksClient } from '../src/tokens/jwks-client.js';
import { createDatabase, poolOf, type DatabaseTimeouts } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import { newestInviteePhones } from '../src/invites/invite-repository.js';

export const INTERNAL_TOKEN = 'test-internal-token-0123456789abcdef';

export interface ReferralTestContext {
  databaseUrl: string;
  /** The app's Redis key prefix (revocations live under it), deleted when the test ends. */
  redisPrefix: string;
  app: FastifyInstance;
  db: Kysely<Database>;
  issuer: TestTokenIssuer;
  /** The service's clock, milliseconds since the epoch; `advance` moves it. */
  clock: { now: number; advance(seconds: number): void };
  outbox: SmsOutbox;
  logs: LogCapture;
}

/**
 * A referral app on a fresh, migrated database and a Redis key prefix of its own, with a token
 * issuer and an SMS outbox.
 * `timeouts` replaces the service's database timeouts, for the tests of what they guard against.
 */
export async function buildReferralTestApp(
  t: Teardownable,
  env: Record<string, string> = {},
  options: { timeouts?: DatabaseTimeouts } = {},
): Promise<ReferralTestContext> {
  const databaseUrl = await createTestDatabase(t);
  const redisPrefix = createTestRedisPrefix(t);
  const db = createDatabase({ url: databaseUrl, poolSize: 10, timeouts: options.timeouts });
  // Registered first, so it runs after the app's own teardown and before the database is dropped.
  t.teardown(() => db.destroy());
  await migrateToLatest(db);
  const issuer = new TestTokenIssuer();
  await issuer.serveJwks(t);
  const clock = {
    now: Date.now(),
    advance(seconds: number) {
      this.now += seconds * 1000;
    },
  };
  const outbox = new SmsOutbox();
  const logs = new LogCapture();
  const config = testConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: redisPrefix,
    INTERNAL_TOKEN,
    LOG_LEVEL: 'info',
    ...env,
  });
  const app = await buildApp(config, {
    db,
    sms: outbox,
    logStream: logs,
    jwks: new JwksClient({ url: issuer.jwksUrl, timeoutMs: 2000, minRefreshMs: 0 }),
    now: () => clock.now,
  });
  t.teardown(() => app.close());
  // As the service does before it listens: revocations are read before any request is answered.
  await app.ready();
  return { databaseUrl, redisPrefix, app, db, issuer, clock, outbox, logs };
}

let phoneCounter = 0;
/** A fresh valid Russian mobile number per call, unique within the process. */
export function nextPhone(): string {
  phoneCounter += 1;
  return `+7900${String(process.pid % 1000).padStart(3, '0')}${String(phoneCounter).padStart(4, '0')}`;
}

/** `token: null` sends no credential at all. */
export async function signInRaw(
  app: FastifyInstance,
  body: Record<string, unknown>,
  token: string | null = INTERNAL_TOKEN,
) {
  return app.inject({
    method: 'POST',
    url: '/internal/v1/users/sign-in',
    payload: body,
    headers: token === null ? {} : { 'x-internal-token': token },
  });
}

export interface TestUser extends Profile {
  token: string;
}

/** Creates a user through the internal sign-in and gives them an access token. */
export async function createUser(ctx: ReferralTestContext, phone: string = nextPhone()): Promise<TestUser> {
  const res = await signInRaw(ctx.app, { phone });
  if (res.statusCode !== 200) throw new Error(`sign-in answered ${res.statusCode}: ${res.body}`);
  const user = res.json().user as Profile;
  return { ...user, token: ctx.issuer.tokenFor(user) };
}

export function as(user: { token: string }) {
  return { authorization: `Bearer ${user.token}` };
}

export async function activate(app: FastifyInstance, user: { token: string }, code: string) {
  return app.inject({
    method: 'PUT',
    url: '/api/v1/profile/invite',
    headers: as(user),
    payload: { invite_code: code },
  });
}

/**
 * For invitees a test inserted directly: what their activations would have left on the inviter's
 * row, the count and the newest phones in the invitee index's order.
 */
export async function recordInviteesAsActivations(db: Kysely<Database>, inviterId: string): Promise<void> {
  await sql`
    UPDATE users u SET
      invited_count = (SELECT count(*) FROM users WHERE invited_by_id = u.id),
      invited_users = to_json(${sql.raw(newestInviteePhones('u.id'))})
    WHERE u.id = ${inviterId}
  `.execute(db);
}

/** A call to one of the internal routes, as auth makes it (with the service credential). */
export async function internal(
  app: FastifyInstance,
  method: 'GET' | 'POST',
  url: string,
  payload?: Record<string, unknown>,
  token: string | null = INTERNAL_TOKEN,
) {
  return app.inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload }),
    headers: token === null ? {} : { 'x-internal-token': token },
  });
}

/**
 * Another process's Revocations on the app's prefix (auth's, say): what it publishes reaches the
 * app through Redis as a real revocation would.
 */
export async function otherProcessRevocations(t: Teardownable, ctx: ReferralTestContext): Promise<Revocations> {
  const redis = await connectRedis(TEST_REDIS_URL, 'api');
  t.teardown(() => closeRedis(redis));
  return new Revocations(redis, ctx.redisPrefix, { accessTtlSeconds: 900, resyncMs: 0 });
}

export { eventually } from '@refstack/shared/testing';

/**
 * The values of every execution of the named statement on the service's pool, in order, until the
 * test ends. `intercept` may send other values instead, or answer with a failure as PostgreSQL
 * would; the statements themselves run unchanged.
 */
export function watchStatement(
  t: Teardownable,
  db: Kysely<Database>,
  name: string,
  intercept?: (values: unknown[]) => { values?: unknown[]; fail?: Error } | undefined,
): unknown[][] {
  const pool = poolOf(db);
  const query = pool.query.bind(pool);
  const seen: unknown[][] = [];
  pool.query = ((...args: Parameters<typeof query>) => {
    const config = args[0] as unknown as QueryConfig;
    if (config.name === name) {
      seen.push(config.values ?? []);
      const changed = intercept?.(config.values ?? []);
      if (changed?.fail) return Promise.reject(changed.fail);
      if (changed?.values) return query({ ...config, values: changed.values });
    }
    return query(...args);
  }) as typeof pool.query;
  t.teardown(() => {
    pool.query = query;
  });
  return seen;
}
