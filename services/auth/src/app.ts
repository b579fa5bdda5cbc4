import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createServiceApp, lazyRedis, type Config, type DestinationStream } from '@refstack/shared';

export interface AuthAppOptions {
  logStream?: DestinationStream;
  /** An existing connection (tests); otherwise the app opens and closes its own. */
  redis?: Redis;
}

export async function buildApp(config: Config, options: AuthAppOptions = {}): Promise<FastifyInstance> {
  const redis = options.redis ?? lazyRedis(config.redisUrl, 'api');
  const app = createServiceApp({
    service: 'auth',
    config,
    logStream: options.logStream,
    trustProxy: config.trustedProxies,
    readiness: { redis: async () => void (await redis.ping()) },
  });
  if (!options.redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => redis.disconnect())));
  return app;
}
