import { Redis, type RedisOptions } from 'ioredis';
import { StoreUnreachableError } from './process.js';

export type RedisRole = 'api' | 'worker';

/**
 * Options for the two kinds of connection. An API connection fails fast while Redis is away so the
 * request can answer 503 instead of hanging; a BullMQ worker connection must wait (BullMQ requires
 * `maxRetriesPerRequest: null` for blocking commands).
 */
export function redisOptions(role: RedisRole): RedisOptions {
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: 2000,
    // Reconnect quickly but not in a tight loop; capped so recovery after an outage takes seconds.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  };
  return role === 'api'
    ? { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 }
    : { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
}

/** Connects once, so that start-up fails with a clear message when Redis is not there. */
export async function connectRedis(url: string, role: RedisRole): Promise<Redis> {
  const client = new Redis(url, redisOptions(role));
  // Errors are reported through readiness and request failures; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new StoreUnreachableError('Redis', url, error);
  }
  return client;
}

/** A client that connects in the background; used where start-up must not wait (tests of failure). */
export function lazyRedis(url: string, role: RedisRole): Redis {
  const client = new Redis(url, redisOptions(role));
  client.on('error', () => undefined);
  client.connect().catch(() => undefined);
  return client;
}

/** Readiness probe: waits briefly for a connection still being made, then PINGs. */
export async function pingRedis(client: Redis, waitMs = 1000): Promise<void> {
  if (client.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new Error(`not connected (${client.status})`));
      }, waitMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      client.once('ready', onReady);
    });
  }
  await client.ping();
}

/** Closes politely when connected (pending replies arrive), at once otherwise. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
