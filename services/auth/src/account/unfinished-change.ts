import { randomUUID } from 'node:crypto';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

/**
 * A phone change or a deletion that referral may have committed while auth has not yet finished
 * its own steps (the old number's notice, ending sessions, forgetting the number). Written once the
 * code is checked, just before referral is asked, and removed once every step ran: a retry after a
 * lost answer or a failed step finds in it the number the account left, which referral no longer
 * knows, and so does auth's sweep of records nobody came back for. A move and a deletion are kept
 * apart, so that neither can overwrite the other's.
 */
export type UnfinishedChange =
  | { kind: 'move'; from: string; to: string; /** The session that asked: it stays. */ keep: string }
  | { kind: 'deletion'; from: string };

/**
 * A record as kept: `id` names this one, so that whoever finishes it (a retry, the sweep) removes
 * it and not a newer change of the same kind begun meanwhile. Records written before ids were
 * given have ''. `at` is when it was begun (ms); records written before it was kept have none.
 */
export type KeptChange<K extends UnfinishedChange['kind'] = UnfinishedChange['kind']> = Extract<
  UnfinishedChange,
  { kind: K }
> & { id: string; at?: number };

/** Long enough for any client's retry and the sweep; the record holds a phone number, so not longer. */
const KEEP_MS = 24 * 3600 * 1000;

/**
 * Takes up to ARGV[3] members scored at or before ARGV[1] and moves each to ARGV[2], so that another
 * instance's sweep leaves them alone until they are due again.
 */
const TAKE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
`;

/** Deletes the record only while it is still the one named ARGV[1]. */
const FINISH = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if (cjson.decode(raw).id or '') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

interface UnfinishedCommands {
  unfinishedTakeDue(index: string, cutoff: number, now: number, limit: number): Promise<string[]>;
  unfinishedFinish(key: string, id: string): Promise<number>;
}

export class UnfinishedChanges {
  private readonly redis: Redis & UnfinishedCommands;
  /** Every record's kind and user, scored by when it is next due for the sweep. */
  private readonly index: string;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    this.redis = redis as Redis & UnfinishedCommands;
    if (!('unfinishedTakeDue' in redis)) redis.defineCommand('unfinishedTakeDue', { numberOfKeys: 1, lua: TAKE_DUE });
    if (!('unfinishedFinish' in redis)) redis.defineCommand('unfinishedFinish', { numberOfKeys: 1, lua: FINISH });
    this.index = `${prefix}:account:unfinished`;
  }

  private key(sub: string, kind: UnfinishedChange['kind']): string {
    return `${this.prefix}:account:unfinished-${kind}:${sub}`;
  }

  async get<K extends UnfinishedChange['kind']>(sub: string, kind: K): Promise<KeptChange<K> | undefined> {
    const raw = await this.redis.get(this.key(sub, kind));
    if (!raw) return undefined;
    const kept = JSON.parse(raw) as KeptChange<K>;
    return { ...kept, id: kept.id ?? '' };
  }

  /** Keeps the change; returns the id that finishes it. */
  async begin(sub: string, change: UnfinishedChange, now: number): Promise<string> {
    const id = randomUUID();
    await this.redis.set(this.key(sub, change.kind), JSON.stringify({ ...change, id, at: now }), 'PX', KEEP_MS);
    await this.redis.zadd(this.index, now, `${change.kind}:${sub}`);
    return id;
  }

  /**
   * Removes the record `id`; a newer change of the same kind begun since (its own record, under
   * the same index entry) stays for its own requests and the sweep.
   */
  async finish(sub: string, kind: UnfinishedChange['kind'], id: string): Promise<void> {
    // The index is another key (another slot in a cluster), so it is not part of the script.
    if ((await this.redis.unfinishedFinish(this.key(sub, kind), id)) !== 1) return;
    const member = `${kind}:${sub}`;
    await this.redis.zrem(this.index, member);
    // A newer change begun between the two keeps its entry, or the sweep would never see it.
    if ((await this.redis.exists(this.key(sub, kind))) === 1)
      await this.redis.zadd(this.index, 'NX', Date.now(), member);
  }

  /**
   * Records begun at least `ageMs` ago, each taken by this caller for the next `ageMs`. An index
   * entry whose record expired is dropped. An entry is due by its score, but the record under it
   * may be a change begun a moment ago, after the one the entry was scored for was finished: that
   * one's request is still running its steps, so it is left until it is due in its own right.
   */
  async takeDue(now: number, ageMs: number, limit = 20): Promise<Array<{ sub: string; change: KeptChange }>> {
    const members = await this.redis.unfinishedTakeDue(this.index, now - ageMs, now, limit);
    const taken: Array<{ sub: string; change: KeptChange }> = [];
    for (const member of members) {
      const [kind, sub] = member.split(/:(.*)/s) as [UnfinishedChange['kind'], string];
      const change = await this.get(sub, kind);
      if (!change) await this.redis.zrem(this.index, member);
      else if ((change.at ?? 0) <= now - ageMs) taken.push({ sub, change });
    }
    return taken;
  }
}
