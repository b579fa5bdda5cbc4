import { Cluster } from 'ioredis';
import type { RedisClient } from './redis.js';

/**
 * Ended sessions and users whose tokens must stop working before they expire. A session entry
 * refuses every access token issued for that session; a user entry refuses every token of the
 * user issued at or before `before` (seconds since the epoch): a block, say, where every session
 * ends at once.
 */
export type Revocation = { sid: string } | { sub: string; before: number };

/** What a verifier knows of a token to decide whether it was revoked. */
export interface RevocableClaims {
  sub: string;
  iat: number;
  sid?: string | undefined;
}

/**
 * `announced`: heard on the channel as it was published, so it is news. `replayed`: first read from
 * the set (this process was not subscribed when it was published), possibly long after: a user
 * revoked then may have been unblocked and signed in again since.
 */
export type RevocationListener = (revoked: Revocation[], how: 'announced' | 'replayed') => void;

export interface RevocationsOptions {
  /** Access tokens live this long: an entry older than that covers no token any more. */
  accessTtlSeconds: number;
  /** How often the whole recent list is read again, in case a message was missed (ms). */
  resyncMs?: number;
  now?: () => number;
}

/**
 * Revocations travel over Redis: `publish` adds each entry to a sorted set (scored by when it stops
 * mattering) and announces it on a channel; every process that checks tokens keeps the recent
 * entries in memory, from the announcements and from a full read of the set whenever its
 * subscription (re)connects and every `resyncMs`. A check is a map lookup: no call per request.
 * The set and the channel are one key each, so a Redis Cluster needs nothing special.
 */
export class Revocations {
  private readonly sessions = new Map<string, number>();
  private readonly users = new Map<string, { before: number; until: number }>();
  private subscriber: RedisClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly key: string;
  private readonly listeners = new Set<RevocationListener>();

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly options: RevocationsOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.key = `${prefix}:revocations`;
  }

  /** Records and announces; resolves once Redis holds them (then every listener has them within moments). */
  async publish(revocations: readonly Revocation[]): Promise<void> {
    if (revocations.length === 0) return;
    const until = this.now() + this.options.accessTtlSeconds * 1000 + 5000;
    const members = revocations.map((r) => JSON.stringify(r));
    const args = members.flatMap((member) => [until, member]);
    await this.redis.zadd(this.key, ...args);
    await this.redis.zremrangebyscore(this.key, '-inf', this.now());
    await this.redis.publish(this.key, JSON.stringify({ until, revocations }));
    this.remember(revocations, until);
  }

  /**
   * Runs `listener` with every batch announced, and with the entries a resync reads that this
   * process had not heard of (auth ends a blocked user's sessions this way, even when it was down or
   * reconnecting as the block was published). At least once: a listener may get an entry twice.
   */
  onRevoked(listener: RevocationListener): void {
    this.listeners.add(listener);
  }

  /** Subscribes and reads the recent entries; resolves once both are done. */
  async start(): Promise<void> {
    // Its own connection (a subscribed one takes no other commands), queueing the subscription
    // until it connects and subscribing again after every reconnection.
    const subscriber =
      this.redis instanceof Cluster
        ? this.redis.duplicate([], { enableOfflineQueue: true, lazyConnect: true })
        : this.redis.duplicate({
            enableOfflineQueue: true,
            maxRetriesPerRequest: null,
            lazyConnect: true,
            // A SUBSCRIBE whose reply was lost is sent again (twice is harmless): ioredis subscribes
            // again after a reconnection only to channels whose reply it had.
            autoResendUnfulfilledCommands: true,
          });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.key) return;
      try {
        const { until, revocations } = JSON.parse(message) as { until: number; revocations: Revocation[] };
        this.remember(revocations, until);
        for (const listener of this.listeners) listener(revocations, 'announced');
      } catch {
        // Not ours to understand; the next resync reads the set itself.
      }
    });
    // Messages published while the subscription was down are read from the set once it is back.
    subscriber.on('ready', () => void this.resync().catch(() => undefined));
    if (subscriber.status === 'wait') subscriber.connect().catch(() => undefined);
    // The periodic read first: should the subscription fail to start, the set is still read.
    if (this.options.resyncMs !== 0) {
      this.timer = setInterval(() => void this.resync().catch(() => undefined), this.options.resyncMs ?? 30_000);
      this.timer.unref();
    }
    await subscriber.subscribe(this.key);
    await this.resync();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    // A subscription has nothing pending worth waiting for.
    subscriber?.disconnect();
  }

  /** Reads every entry that still matters; listeners get those this process had not heard of. */
  async resync(): Promise<void> {
    const entries = await this.redis.zrangebyscore(this.key, this.now(), '+inf', 'WITHSCORES');
    const learned: Revocation[] = [];
    for (let i = 0; i + 1 < entries.length; i += 2) {
      try {
        learned.push(...this.remember([JSON.parse(entries[i]!) as Revocation], Number(entries[i + 1])));
      } catch {
        // A member this version cannot read is skipped.
      }
    }
    this.prune();
    if (learned.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(learned, 'replayed');
      } catch {
        // One listener's failure neither stops the others nor fails the resync.
      }
    }
  }

  isRevoked(claims: RevocableClaims): boolean {
    if (claims.sid !== undefined && this.sessions.has(claims.sid)) return true;
    const user = this.users.get(claims.sub);
    return user !== undefined && claims.iat <= user.before;
  }

  /** Keeps the entries; answers those that were news (an unknown session, a user's later time). */
  private remember(revocations: readonly Revocation[], until: number): Revocation[] {
    const learned: Revocation[] = [];
    for (const revocation of revocations) {
      if ('sid' in revocation) {
        const known = this.sessions.get(revocation.sid);
        if (known === undefined) learned.push(revocation);
        this.sessions.set(revocation.sid, Math.max(until, known ?? 0));
      } else {
        const known = this.users.get(revocation.sub);
        if (!known || known.before < revocation.before) learned.push(revocation);
        if (!known || known.before <= revocation.before)
          this.users.set(revocation.sub, { before: revocation.before, until });
      }
    }
    return learned;
  }

  private prune(): void {
    const now = this.now();
    for (const [sid, until] of this.sessions) if (until <= now) this.sessions.delete(sid);
    for (const [sub, entry] of this.users) if (entry.until <= now) this.users.delete(sub);
  }
}
