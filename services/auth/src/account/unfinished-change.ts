import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

/**
 * A phone change or a deletion that referral may have committed while auth has not yet finished
 * its own steps (the old number's notice, ending sessions, forgetting the number). Written before
 * the call, removed once every step ran: a retry after a lost answer or a failed step finds in it
 * the number the account left, which referral no longer knows.
 */
export interface UnfinishedChange {
  from: string;
  /** The new number; null for a deletion. */
  to: string | null;
}

/** Long enough for any client's retry; the record holds a phone number, so not longer. */
const KEEP_MS = 24 * 3600 * 1000;

export class UnfinishedChanges {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(sub: string): string {
    return `${this.prefix}:account:unfinished:${sub}`;
  }

  async get(sub: string): Promise<UnfinishedChange | undefined> {
    const raw = await this.redis.get(this.key(sub));
    return raw ? (JSON.parse(raw) as UnfinishedChange) : undefined;
  }

  async begin(sub: string, change: UnfinishedChange): Promise<void> {
    await this.redis.set(this.key(sub), JSON.stringify(change), 'PX', KEEP_MS);
  }

  async finish(sub: string): Promise<void> {
    await this.redis.del(this.key(sub));
  }
}
