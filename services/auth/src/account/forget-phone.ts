import { Cluster } from 'ioredis';
import type { RedisClient } from '@refstack/shared/platform/redis';

/** Redis glob characters in a key pattern are matched literally. */
const escapeGlob = (text: string) => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * Every key of this prefix under one hash tag. The tag's keys share one slot: on a Redis Cluster
 * its master lists them (CLUSTER GETKEYSINSLOT); on a single Redis a SCAN finds them, reading the
 * keyspace once.
 */
async function keysUnderTag(redis: RedisClient, prefix: string, tag: string): Promise<string[]> {
  if (redis instanceof Cluster) {
    const masters = redis.nodes('master');
    const slot = Number(await masters[0]?.cluster('KEYSLOT', tag));
    const lists = await Promise.all(
      masters.map(async (node) => (await node.cluster('GETKEYSINSLOT', slot, 100_000)) as string[]),
    );
    return lists.flat().filter((key) => key.startsWith(`${prefix}:`) && key.includes(tag));
  }
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}:*${escapeGlob(tag)}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/**
 * Forgets a phone number in auth's Redis: its code and counters (`otp:{phone}…`) and its messages'
 * status records (`sms:{phone}…`), with the provider-id entries that point at them. Returns how
 * many keys went. Sessions are ended separately (by user, not by phone).
 */
export async function forgetPhone(redis: RedisClient, prefix: string, phone: string): Promise<number> {
  const tagged = await keysUnderTag(redis, prefix, `{${phone}}`);
  const otpKeys = tagged.filter((key) => key.startsWith(`${prefix}:otp:{${phone}}`));
  const smsKeys = tagged.filter((key) => key.startsWith(`${prefix}:sms:{${phone}}`));
  const providerKeys: string[] = [];
  for (const key of smsKeys.filter((k) => k.includes(':m:'))) {
    const raw = await redis.get(key).catch(() => null);
    if (!raw) continue;
    try {
      const record = JSON.parse(raw) as { provider?: unknown; provider_message_id?: unknown };
      if (typeof record.provider === 'string' && typeof record.provider_message_id === 'string')
        providerKeys.push(`${prefix}:sms:pid:${record.provider}:${record.provider_message_id}`);
    } catch {
      // Not a record this version wrote: the key goes all the same.
    }
  }
  // One DEL per key: on a cluster, keys of different slots cannot share a command.
  const all = [...otpKeys, ...smsKeys, ...providerKeys];
  await Promise.all(all.map((key) => redis.del(key)));
  return all.length;
}
