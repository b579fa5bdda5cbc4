import type { FastifyInstance } from 'fastify';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import { type Config } from '@refstack/shared/contracts';
import {
  closeRedis,
  createServiceApp,
  createSmsQueue,
  describeRedis,
  lazyRedis,
  metricsRegistry,
  pingRedis,
  registerOpenApi,
  Revocations,
  StoreUnreachableError,
  type DestinationStream,
  type SmsQueue,
} from '@refstack/shared/platform';
import { accountServiceFactory } from './account/account-service.js';
import { UnfinishedChanges } from './account/unfinished-change.js';
import { createSmsGuard } from './guard/index.js';
import { loginServiceFactory } from './login-service.js';
import { OtpStore } from './otp/otp-store.js';
import { otpServiceFactory } from './otp/otp-service.js';
import { createReferralClient, type ReferralClient } from './referral-client.js';
import { accountRoutes } from './routes/account-routes.js';
import { authRoutes } from './routes/auth-routes.js';
import { seedRoutes } from './routes/seed-routes.js';
import { webhookRoutes } from './routes/webhook-routes.js';
import { codeFunnel } from './sms/code-funnel.js';
import { MessageLog } from './sms/message-log.js';
import { receiptServiceFactory, receiptVerifiers } from './sms/receipt-service.js';
import { smsFunnelMetrics } from './sms/sms-metrics.js';
import { loadKeyring } from './tokens/keyring.js';
import { SessionStore } from './tokens/session-store.js';
import { registerAccessTokens } from './tokens/jwt.js';
import { tokenServiceFactory } from './tokens/token-service.js';

export interface AuthAppOptions {
  logStream?: DestinationStream;
  /** An existing connection (tests); otherwise the app opens and closes its own. */
  redis?: Redis;
  /** Milliseconds since the epoch; tests move it instead of sleeping. */
  now?: () => number;
  /** Stand-ins for the bus or the referral service (tests of failures). */
  sms?: SmsQueue;
  referral?: ReferralClient;
  /** How often the sweep of unfinished moves and deletions runs (tests shorten it). */
  unfinishedSweepMs?: number;
}

/** How often each instance looks for moves and deletions nobody came back to finish. */
const UNFINISHED_SWEEP_MS = 30_000;

/** The composition root of the auth service: stores, services, routes. */
export async function buildApp(config: Config, options: AuthAppOptions = {}): Promise<FastifyInstance> {
  const redis = options.redis ?? lazyRedis(config, 'api');
  try {
    return await compose(config, options, redis);
  } catch (error) {
    if (!options.redis) redis.disconnect();
    throw error;
  }
}

async function compose(config: Config, options: AuthAppOptions, redis: Redis): Promise<FastifyInstance> {
  const now = options.now ?? Date.now;
  const app = createServiceApp({
    service: 'auth',
    config,
    logStream: options.logStream,
    trustProxy: config.trustedProxies,
    readiness: { redis: () => pingRedis(redis) },
  });
  if (!options.redis) app.addHook('onClose', () => closeRedis(redis));

  await registerOpenApi(app, {
    title: 'Refstack auth',
    description: 'Phone login with one-time SMS codes; tokens and sessions.',
  });

  if (!config.tokens.privateKeyPem) {
    // The development signing key lives in Redis: wait for the connection rather than fail on it.
    await pingRedis(redis, 3000).catch((error: unknown) => {
      throw new StoreUnreachableError('Redis', describeRedis(config), error);
    });
  }
  const keyring = await loadKeyring({
    privateKeyPem: config.tokens.privateKeyPem,
    publicKeysPem: config.tokens.extraPublicKeysPem,
    redis,
    redisKeyPrefix: config.redisKeyPrefix,
  });
  const accessTokens = await registerAccessTokens(app, keyring, config, now);

  const sms = options.sms ?? createSmsQueue(redis, config.redisKeyPrefix);
  if (!options.sms) app.addHook('onClose', () => sms.close());
  const referral =
    options.referral ??
    createReferralClient({
      bases: config.urls.referralInstances,
      internalToken: config.internalToken,
      log: app.log,
      probeIntervalMs: config.gateway.healthIntervalMs,
      ejectMs: config.gateway.ejectMs,
      referralTimeoutMs: config.referralTimeoutMs,
    });
  if (!options.referral) app.addHook('onClose', () => referral.close());

  const messages = new MessageLog(redis, config.redisKeyPrefix);
  const funnel = smsFunnelMetrics(metricsRegistry(app));
  const guard = createSmsGuard(redis, config, metricsRegistry(app), app.log);
  if (config.guard.testPhones.size > 0) {
    // Named so an operator sees what is open, without their codes.
    app.log.info(
      { test_phones: [...config.guard.testPhones.values()].map(({ phone, until }) => ({ phone, until })) },
      'test numbers (TEST_PHONES): fixed codes, never sent',
    );
  }
  const otpStore = new OtpStore(redis, config.redisKeyPrefix);
  const otp = otpServiceFactory({
    store: otpStore,
    sms,
    guard,
    config,
    now,
    onVerified: codeFunnel({ messages, funnel, ttlMs: config.otp.ttlSeconds * 1000, now, log: app.log }),
  });
  const receipts = receiptServiceFactory({
    verifiers: receiptVerifiers(config.sms),
    messages,
    redis,
    redisKeyPrefix: config.redisKeyPrefix,
    funnel,
    now,
  });
  const sessions = new SessionStore(redis, config.redisKeyPrefix, now);
  const revocations = new Revocations(redis, config.redisKeyPrefix, {
    accessTtlSeconds: config.tokens.accessTtlSeconds,
    now,
  });
  // A user revoked elsewhere (an operator's block in referral): every auth instance ends the
  // user's sessions; ending them twice is harmless. Announced, the block is now: every session goes.
  // Replayed (an instance that was down or reconnecting reads it later), the user may have been
  // unblocked and signed in since: only the sessions begun by the block go. Past the entry's life,
  // refresh refuses the rest (referral keeps the block's time).
  revocations.onRevoked((batch, how) => {
    for (const revocation of batch) {
      if (!('sub' in revocation)) continue;
      const ending =
        how === 'announced' ? sessions.endAll(revocation.sub) : sessions.endBegunBy(revocation.sub, revocation.before);
      ending.catch((error: unknown) => {
        app.log.warn(
          { reason: (error as Error).message, user_id: revocation.sub },
          'sessions of a revoked user not ended',
        );
      });
    }
  });
  // In the background: auth's own checks read sessions from Redis; the channel adds user revocations.
  revocations.start().catch((error: unknown) => {
    app.log.warn({ reason: (error as Error).message }, 'revocation channel not subscribed yet');
  });
  app.addHook('onClose', () => revocations.stop());
  const tokens = tokenServiceFactory({
    sessions,
    accessTokens,
    accessTtlSeconds: config.tokens.accessTtlSeconds,
    refreshTtlSeconds: config.tokens.refreshTtlSeconds,
    user: (sub, requestId) => referral.user(sub, requestId),
    revoke: (batch) => revocations.publish(batch),
    isRevoked: (claims) => revocations.isRevoked(claims),
  });
  const login = loginServiceFactory({ otp, referral, tokens, config });
  const accounts = accountServiceFactory({
    otp,
    referral,
    tokens,
    sessions,
    sms,
    forgetPhone: async (phone) => {
      await Promise.all([otpStore.forget(phone), messages.forget(phone)]);
    },
    unfinished: new UnfinishedChanges(redis, config.redisKeyPrefix),
    config,
    now,
  });
  let sweeping = false;
  const sweep = setInterval(() => {
    // One run at a time: a slow referral must not pile runs up.
    if (sweeping) return;
    sweeping = true;
    accounts
      .finishAbandoned((sub, error) =>
        app.log.warn({ user_id: sub, reason: (error as Error).message }, 'unfinished account change not finished yet'),
      )
      .catch((error: unknown) => app.log.warn({ reason: (error as Error).message }, 'unfinished changes not read'))
      .finally(() => (sweeping = false));
  }, options.unfinishedSweepMs ?? UNFINISHED_SWEEP_MS);
  sweep.unref();
  app.addHook('onClose', () => clearInterval(sweep));

  await app.register(authRoutes, { otp, login, tokens, keyring });
  await app.register(accountRoutes, { accounts, tokens });
  if (config.legacyPaths) await app.register(seedRoutes, { otp, login, tokens });
  await app.register(webhookRoutes, { receipts });
  return app;
}
