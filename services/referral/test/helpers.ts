import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { Profile, SmsJob, SmsQueue } from '@refstack/shared';
import { createTestDatabase, LogCapture, testConfig, type Teardownable } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import { JwksClient } from '../src/auth/jwks-client.js';
import { createDatabase, type DatabaseTimeouts } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import { EMBEDDED_INVITEES } from '../src/users/user-repository.js';

export const INTERNAL_TOKEN = 'test-internal-token-0123456789abcdef';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs access tokens the way the auth service does, and serves the matching JWKS over HTTP. */
export class TestIssuer {
  readonly keys: Array<{ kid: string; privateKey: KeyObject; publicKey: KeyObject }> = [];
  jwksUrl = '';
  jwksFetches = 0;
  /** Kids still signing here but no longer published (a retired or leaked key). */
  readonly retired = new Set<string>();
  /** What the JWKS endpoint answers instead of the keys: an HTTP error, or a set with no usable key. */
  fault: 'http_500' | 'no_keys' | undefined;
  private server: FastifyInstance | undefined;

  addKey(): string {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const kid = randomUUID();
    this.keys.push({ kid, privateKey, publicKey });
    return kid;
  }

  async start(t: Teardownable): Promise<void> {
    this.addKey();
    const server = Fastify();
    server.get('/.well-known/jwks.json', async (_request, reply) => {
      this.jwksFetches += 1;
      if (this.fault === 'http_500') return reply.code(500).send({ error: 'down' });
      if (this.fault === 'no_keys') return { keys: [] };
      const published = this.keys.filter((k) => !this.retired.has(k.kid));
      return { keys: published.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: 'ES256', use: 'sig' })) };
    });
    await server.listen({ host: '127.0.0.1', port: 0 });
    t.teardown(() => server.close());
    const address = server.server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    this.jwksUrl = `http://127.0.0.1:${address.port}/.well-known/jwks.json`;
    this.server = server;
  }

  sign(claims: Record<string, unknown>, options: { kid?: string; header?: Record<string, unknown> } = {}): string {
    const key = options.kid ? this.keys.find((k) => k.kid === options.kid) : this.keys[0];
    if (!key) throw new Error('no such key');
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: key.kid, ...options.header })}.${b64({ iss: 'refstack-auth', aud: 'refstack', iat: now, exp: now + 900, jti: randomUUID(), roles: [], ...claims })}`;
    return `${input}.${createSign('SHA256').update(input).sign({ key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  }

  tokenFor(user: Pick<Profile, 'id' | 'phone'>): string {
    return this.sign({ sub: user.id, phone: user.phone });
  }
}

export class SmsOutbox implements SmsQueue {
  readonly jobs: SmsJob[] = [];
  failing = false;
  async send(job: SmsJob): Promise<void> {
    if (this.failing) throw new Error('bus down');
    this.jobs.push(job);
  }
  async close(): Promise<void> {}
}

export interface ReferralTestContext {
  databaseUrl: string;
  app: FastifyInstance;
  db: Kysely<Database>;
  issuer: TestIssuer;
  outbox: SmsOutbox;
  logs: LogCapture;
}

/**
 * A referral app on a fresh, migrated database of its own, with a token issuer and an SMS outbox.
 * `timeouts` replaces the service's database timeouts, for the tests of what they guard against.
 */
export async function buildReferralTestApp(t: Teardownable, env: Record<string, string> = {}, options: { timeouts?: DatabaseTimeouts } = {}): Promise<ReferralTestContext> {
  const databaseUrl = await createTestDatabase(t);
  const db = createDatabase({ url: databaseUrl, poolSize: 10, timeouts: options.timeouts });
  // Registered first, so it runs after the app's own teardown and before the database is dropped.
  t.teardown(() => db.destroy());
  await migrateToLatest(db);
  const issuer = new TestIssuer();
  await issuer.start(t);
  const outbox = new SmsOutbox();
  const logs = new LogCapture();
  const config = testConfig({ DATABASE_URL: databaseUrl, INTERNAL_TOKEN, LOG_LEVEL: 'info', ...env });
  const app = await buildApp(config, { db, sms: outbox, logStream: logs, jwks: new JwksClient({ url: issuer.jwksUrl, timeoutMs: 2000, minRefreshMs: 0 }) });
  t.teardown(() => app.close());
  return { databaseUrl, app, db, issuer, outbox, logs };
}

let phoneCounter = 0;
/** A fresh valid Russian mobile number per call, unique within the process. */
export function nextPhone(): string {
  phoneCounter += 1;
  return `+7900${String(process.pid % 1000).padStart(3, '0')}${String(phoneCounter).padStart(4, '0')}`;
}

/** `token: null` sends no credential at all. */
export async function signInRaw(app: FastifyInstance, body: Record<string, unknown>, token: string | null = INTERNAL_TOKEN) {
  return app.inject({ method: 'POST', url: '/internal/v1/users/sign-in', payload: body, headers: token === null ? {} : { 'x-internal-token': token } });
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
  return app.inject({ method: 'PUT', url: '/api/v1/profile/invite', headers: as(user), payload: { invite_code: code } });
}

/**
 * For invitees a test inserted directly: what their activations would have left on the inviter's
 * row, the count and the newest phones in the invitee index's order.
 */
export async function recordInviteesAsActivations(db: Kysely<Database>, inviterId: string): Promise<void> {
  await sql`
    UPDATE users SET
      invited_count = (SELECT count(*) FROM users WHERE invited_by_id = ${inviterId}),
      invited_users = to_json(ARRAY(
        SELECT phone FROM users WHERE invited_by_id = ${inviterId} ORDER BY activated_at DESC, id DESC LIMIT ${EMBEDDED_INVITEES}))
    WHERE id = ${inviterId}
  `.execute(db);
}

/** Polls until the condition holds, and says how long it took; throws naming `what` past the deadline. */
export async function eventually(what: string, condition: () => Promise<boolean> | boolean, deadlineMs: number): Promise<number> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > deadlineMs) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - start;
}
