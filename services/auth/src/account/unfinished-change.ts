import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

/**
 * A phone change or a deletion that referral may have committed while auth has not yet finished
 * its own steps (the old number's notice, ending sessions, forgetting the number). Written once the
 * code is checked, just before referral is asked, and removed once every step ran: a retry after a
 * lost answer or a failed step finds in it the number the account left, which referral no longer
 * knows. A move and a deletion are kept apart, so that neither can overwrite the other's.
 */
export type UnfinishedChange = { kind: 'move'; from: string; to: string } | { kind: 'deletion'; from: string };

/** Long enough for any client's retry; the record holds a phone number, so not longer. */
const KEEP_MS = 24 * 3600 * 1000;

export class UnfinishedChanges {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(sub: string, kind: UnfinishedChange['kind']): string {
    return `${this.prefix}:account:unfinished-${kind}:${sub}`;
  }

  async get<K extends UnfinishedChange['kind']>(
    sub: string,
    kind: K,
  ): Promise<Extract<UnfinishedChange, { kind: K }> | undefined> {
    const raw = await this.redis.get(this.key(sub, kind));
    return raw ? (JSON.parse(raw) as Extract<UnfinishedChange, { kind: K }>) : undefined;
  }

  async begin(sub: string, change: UnfinishedChange): Promise<void> {
    await this.redis.set(this.key(sub, change.kind), JSON.stringify(change), 'PX', KEEP_MS);
  }

  async finish(sub: string, kind: UnfinishedChange['kind']): Promise<void> {
    await this.redis.del(this.key(sub, kind));
  }
}
