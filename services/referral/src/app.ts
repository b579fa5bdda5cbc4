import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import { type Config } from '@refstack/shared/contracts';
import {
  closeRedis,
  createServiceApp,
  createSmsQueue,
  lazyRedis,
  pingRedis,
  registerOpenApi,
  Revocations,
  type DestinationStream,
  type SmsQueue,
} from '@refstack/shared/platform';
import { authenticatePlugin } from './tokens/authenticate.js';
import { AccessTokenVerifier } from './tokens/access-token-verifier.js';
import { JwksClient } from './tokens/jwks-client.js';
import { createDatabase, pingDatabase } from './db/database.js';
import type { Database } from './db/schema.js';
import { internalRoutes } from './routes/internal-routes.js';
import { profileRoutes } from './routes/profile-routes.js';
import { seedRoutes } from './routes/seed-routes.js';
import { usersRoutes } from './routes/users-routes.js';
import { activationDeadlines, inviteServiceFactory } from './invites/invite-service.js';
import { accountServiceFactory } from './users/account-service.js';
import { userServiceFactory } from './users/user-service.js';

export interface ReferralAppOptions {
  logStream?: DestinationStream;
  /** An existing handle (tests share one); otherwise the app opens and closes its own pool. */
  db?: Kysely<Database>;
  /** The bus for inviter notifications; by default a queue on `redis`. */
  sms?: SmsQueue;
  /** Carries the SMS queue and the token revocations; by default a connection to REDIS_URL. */
  redis?: Redis;
  jwks?: JwksClient;
  /** Milliseconds since the epoch; tests move it instead of sleeping. */
  now?: () => number;
}

/** The composition root of the referral service: database, bus, token verification, routes. */
export async function buildApp(config: Config, options: ReferralAppOptions = {}): Promise<FastifyInstance> {
  const db = options.db ?? createDatabase({ url: config.databaseUrl, poolSize: config.databasePoolSize });
  const app = createServiceApp({
    service: 'referral',
    config,
    logStream: options.logStream,
    // Notifications are best effort, so Redis is not a readiness condition: users keep their
    // profiles and invites while the bus is away.
    readiness: { postgres: () => pingDatabase(db) },
  });
  if (!options.db) app.addHook('onClose', () => db.destroy());

  const redis = options.redis ?? lazyRedis(config, 'api');
  if (!options.redis) app.addHook('onClose', () => closeRedis(redis));
  let sms = options.sms;
  if (!sms) {
    sms = createSmsQueue(redis, config.redisKeyPrefix);
    const queue = sms;
    app.addHook('onClose', () => queue.close());
  }
  // Ended sessions and blocked users, from every process: tokens must not be accepted before this
  // instance knows what was revoked, so it serves nothing until the recent revocations are read.
  // Its own clock: entries expire in Redis, shared with the other processes, in real time.
  const revocations = new Revocations(redis, config.redisKeyPrefix, {
    accessTtlSeconds: config.tokens.accessTtlSeconds,
  });
  app.addHook('onReady', async () => {
    // The connection is made in the background; the first read must not find it still opening.
    await pingRedis(redis, 2000);
    await revocations.start();
  });
  app.addHook('onClose', () => revocations.stop());

  await registerOpenApi(app, { title: 'Refstack referral', description: 'Users, profiles and invite codes.' });
  const jwks =
    options.jwks ?? new JwksClient({ url: config.urls.jwks, alternates: config.urls.jwksAlternates, timeoutMs: 2000 });
  jwks.start(config.jwksRefreshSeconds * 1000, app.log);
  app.addHook('onClose', () => jwks.stop());
  const now = options.now ?? Date.now;
  await app.register(authenticatePlugin, { verifier: new AccessTokenVerifier(jwks, config, revocations, now) });

  const invites = inviteServiceFactory({
    db,
    sms,
    log: app.log,
    deadlines: activationDeadlines(config),
    noticeWindowSeconds: config.guard.inviteNoticeWindowSeconds,
    now,
  });
  const users = userServiceFactory({ db, invites });
  const accounts = accountServiceFactory({
    db,
    revocations,
    deadlines: activationDeadlines(config),
    sms,
    log: app.log,
  });
  await app.register(profileRoutes, { users, invites });
  await app.register(usersRoutes, { users, accounts });
  await app.register(internalRoutes, { users, accounts, config });
  // The seeds' clients on their own paths; off, those paths are simply not there (404).
  if (config.legacyPaths) await app.register(seedRoutes, { users, invites });
  return app;
}
