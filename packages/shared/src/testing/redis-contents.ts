import type { Redis } from 'ioredis';

/**
 * Every key under a prefix with its whole value as text, whatever the type: for tests that search
 * Redis for something that must not be there (a code, a phone).
 */
export async function redisContents(redis: Redis, prefix: string): Promise<Map<string, string>> {
  const contents = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') value = await redis.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      else if (type === 'none') continue;
      else value = `(a ${type})`;
      contents.set(key, JSON.stringify(value));
    }
  } while (cursor !== '0');
  return contents;
}
