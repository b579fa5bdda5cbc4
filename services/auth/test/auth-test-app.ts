import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { Redis } from 'ioredis';
import {
  generateInviteCode,
  problemBody,
  PROBLEM_CONTENT_TYPE,
  type ErrorCode,
  type Profile,
} from '@refstack/shared/contracts';
import {
  createTestRedisPrefix,
  LogCapture,
  SmsOutbox,
  TEST_REDIS_URL,
  testConfig,
  type Teardownable,
} from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import type { ReferralClient } from '../src/referral-client.js';

export const INTERNAL_TOKEN = 'test-internal-token-0123456789abcdef';
/** A logger for clients whose complaints a test provokes on purpose. */
export const QUIET = { error: () => undefined, warn: () => undefined, info: () => undefined };

/** Invite codes the stand-in refuses, as referral would: with referral's error code and status. */
export const REFUSED_INVITES: Record<string, { code: ErrorCode; status: number }> = {
  NOPE00: { code: 'invite_not_found', status: 404 },
  SELF00: { code: 'invite_self', status: 422 },
  USED00: { code: 'invite_already_activated', status: 409 },
  CYCLE0: { code: 'invite_cycle', status: 422 },
};

/**
 * A stand-in for the referral service's internal sign-in, over real HTTP: it creates users on first
 * sign-in and refuses the invite codes of REFUSED_INVITES the way referral does.
 */
export async function startReferralStandIn(t: Teardownable): Promise<{
  url: string;
  users: Map<string, Profile>;
  calls: Array<{ phone: string; invite_code?: string }>;
  app: FastifyInstance;
  delay: { ms: number };
  /** How long each phone move takes to answer. */
  accountDelay: { ms: number };
  /** Sign-ins wait while `until` is set; `arrived` counts those that reached the stand-in. */
  hold: { until: Promise<void> | undefined; arrived: number };
  /** Ids of users an operator blocked: their sign-ins are refused, as referral refuses them. */
  blocked: Set<string>;
  /** The latest block's time per user (seconds), which an unblock leaves: `revoked_before`. */
  revokedBefore: Map<string, number>;
  /** Calls whose next one commits and then answers 503, as when referral's answer is lost. */
  loseAnswer: Set<'phone' | 'delete'>;
}> {
  const users = new Map<string, Profile>();
  const calls: Array<{ phone: string; invite_code?: string }> = [];
  /** How long each sign-in takes to answer; a test raises it to play a slow referral service. */
  const delay = { ms: 0 };
  const accountDelay = { ms: 0 };
  const hold: { until: Promise<void> | undefined; arrived: number } = { until: undefined, arrived: 0 };
  const blocked = new Set<string>();
  const revokedBefore = new Map<string, number>();
  const loseAnswer = new Set<'phone' | 'delete'>();
  let nextId = 0;
  const app = Fastify();
  const problem = (reply: FastifyReply, status: number, code: ErrorCode) =>
    reply.code(status).type(PROBLEM_CONTENT_TYPE).send(problemBody(code, code));
  const byId = (id: string) => [...users.values()].find((u) => u.id === id);
  // The account calls (packages/shared/src/contracts/lifecycle.ts), as referral answers them.
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-internal-token'] !== INTERNAL_TOKEN) return problem(reply, 401, 'unauthorized');
  });
  app.get<{ Params: { id: string } }>('/internal/v1/users/:id', async (request, reply) => {
    const user = byId(request.params.id);
    if (!user) return problem(reply, 404, 'not_found');
    return {
      id: user.id,
      phone: user.phone,
      roles: [],
      status: blocked.has(user.id) ? 'blocked' : 'active',
      revoked_before: revokedBefore.get(user.id) ?? null,
    };
  });
  app.post<{ Params: { id: string }; Body: { phone: string } }>(
    '/internal/v1/users/:id/phone',
    async (request, reply) => {
      if (accountDelay.ms > 0) await new Promise((resolve) => setTimeout(resolve, accountDelay.ms));
      const user = byId(request.params.id);
      if (!user) return problem(reply, 404, 'not_found');
      if (blocked.has(user.id)) return problem(reply, 403, 'account_blocked');
      const taken = users.get(request.body.phone);
      if (taken && taken.id !== user.id) return problem(reply, 409, 'phone_taken');
      users.delete(user.phone);
      const moved = { ...user, phone: request.body.phone };
      users.set(moved.phone, moved);
      if (loseAnswer.delete('phone')) return problem(reply, 503, 'service_unavailable');
      return { user: moved, old_phone: user.phone };
    },
  );
  app.post<{ Params: { id: string } }>('/internal/v1/users/:id/delete', async (request, reply) => {
    const user = byId(request.params.id);
    if (!user) return problem(reply, 404, 'not_found');
    users.delete(user.phone);
    if (loseAnswer.delete('delete')) return problem(reply, 503, 'service_unavailable');
    return { old_phone: user.phone };
  });
  app.get<{ Params: { id: string } }>('/internal/v1/users/:id/export', async (request, reply) => {
    const user = byId(request.params.id);
    if (!user) return problem(reply, 404, 'not_found');
    return { profile: user, activation: null, invitees: [], is_admin: false, updated_at: user.created_at };
  });
  app.post<{ Body: { phone: string; invite_code?: string } }>('/internal/v1/users/sign-in', async (request, reply) => {
    hold.arrived += 1;
    await hold.until;
    if (delay.ms > 0) await new Promise((resolve) => setTimeout(resolve, delay.ms));
    calls.push(request.body);
    const known = users.get(request.body.phone);
    if (known && blocked.has(known.id)) {
      return reply.code(403).type(PROBLEM_CONTENT_TYPE).send(problemBody('account_blocked', 'blocked'));
    }
    const refusal = request.body.invite_code ? REFUSED_INVITES[request.body.invite_code] : undefined;
    if (refusal) {
      return reply.code(refusal.status).type(PROBLEM_CONTENT_TYPE).send(problemBody(refusal.code, 'refused'));
    }
    const existing = users.get(request.body.phone);
    if (existing) return { user: existing, created: false, roles: [] };
    const user: Profile = {
      id: String((nextId += 1)),
      phone: request.body.phone,
      invite_code: generateInviteCode(),
      activated_invite_code: request.body.invite_code ?? null,
      invited_users: [],
      invited_count: 0,
      first_name: null,
      last_name: null,
      email: null,
      created_at: new Date().toISOString(),
    };
    users.set(user.phone, user);
    return { user, created: true, roles: [] };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    users,
    calls,
    app,
    delay,
    accountDelay,
    hold,
    blocked,
    revokedBefore,
    loseAnswer,
  };
}

export interface AuthTestContext {
  app: FastifyInstance;
  redis: Redis;
  prefix: string;
  outbox: SmsOutbox;
  logs: LogCapture;
  clock: { now: number; advance(seconds: number): void };
  referral: Awaited<ReturnType<typeof startReferralStandIn>>;
}

/**
 * An auth app on real Redis (its own key prefix), with a movable clock, an SMS outbox and a
 * referral stand-in. `env` overrides configuration like environment variables would.
 */
export async function buildAuthTestApp(
  t: Teardownable,
  env: Record<string, string> = {},
  options: { referralClient?: ReferralClient; unfinishedSweepMs?: number } = {},
): Promise<AuthTestContext> {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.quit());
  const referral = await startReferralStandIn(t);
  const outbox = new SmsOutbox();
  const logs = new LogCapture();
  const clock = {
    now: Date.now(),
    advance(seconds: number) {
      this.now += seconds * 1000;
    },
  };
  const config = testConfig({
    REDIS_KEY_PREFIX: prefix,
    LOG_LEVEL: 'info',
    REFERRAL_URL: referral.url,
    INTERNAL_TOKEN,
    ...env,
  });
  const app = await buildApp(config, {
    redis,
    logStream: logs,
    now: () => clock.now,
    sms: outbox,
    referral: options.referralClient,
    unfinishedSweepMs: options.unfinishedSweepMs,
  });
  t.teardown(() => app.close());
  return { app, redis, prefix, outbox, logs, clock, referral };
}

export const PHONE = '+79123456789';

/** `from`: the client's address (the default is the loopback a test client has). */
export async function sendCode(
  app: FastifyInstance,
  phone: string = PHONE,
  headers: Record<string, string> = {},
  from?: string,
) {
  return app.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    payload: { phone },
    headers,
    ...(from ? { remoteAddress: from } : {}),
  });
}

export async function verify(app: FastifyInstance, body: Record<string, unknown>, from?: string) {
  return app.inject({
    method: 'POST',
    url: '/api/v1/auth/verify',
    payload: body,
    ...(from ? { remoteAddress: from } : {}),
  });
}

/** Send-code then verify; returns the verify answer's body. */
export async function signIn(ctx: AuthTestContext, phone: string = PHONE) {
  const sent = await sendCode(ctx.app, phone);
  if (sent.statusCode !== 200) throw new Error(`send-code answered ${sent.statusCode}: ${sent.body}`);
  const res = await verify(ctx.app, { phone, code: ctx.outbox.lastCodeFor(phone) });
  if (res.statusCode !== 200) throw new Error(`verify answered ${res.statusCode}: ${res.body}`);
  return res.json() as {
    user: Profile;
    tokens: { access: string; refresh: string; token_type: string; expires_in: number };
    created: boolean;
  };
}
