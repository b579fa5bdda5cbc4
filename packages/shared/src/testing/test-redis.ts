import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Teardownable } from './test-database.js';
import { TEST_REDIS_URL } from './test-config.js';

/**
 * A key prefix of its own for one test file; every key under it is deleted at teardown, so test
 * files share one Redis server without seeing each other's data.
 */
export function createTestRedisPrefix(t: Teardownable): string {
  const prefix = `test-${process.pid}-${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  });
  return prefix;
}

export const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1';
