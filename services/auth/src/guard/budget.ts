import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import type { SmsBudget } from '@refstack/shared/contracts';

const DAY_MS = 86_400_000;

/**
 * Takes one message from a pool's budget for the day, never past it, however many instances ask at
 * once. KEYS: the pool's counter for the day. Returns {taken, used after}.
 */
const TAKE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, used}
`;

/** Gives back a message that was not sent after all. KEYS: the pool's counter for the day. */
const GIVE_BACK = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then redis.call('DECR', KEYS[1]) end
return 1
`;

interface BudgetCommands {
  smsBudgetTake(key: string, limit: number, ttlMs: number): Promise<[number, number]>;
  smsBudgetGiveBack(key: string): Promise<number>;
}

export type BudgetReservation =
  { allowed: true; release(): Promise<void> } | { allowed: false; pool: string; retryAfterMs: number };

export interface BudgetEvents {
  /** A pool reached a share of its day's budget (0.8, then 1), told once per pool and day. */
  onThreshold(pool: string, share: number, used: number, limit: number): void;
  onUsage(pool: string, used: number, limit: number): void;
}

export interface BudgetState {
  pool: string;
  used: number;
  limit: number;
}

const THRESHOLDS = [0.8, 1] as const;

export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** Milliseconds until the next UTC day, when every pool starts afresh. */
export function untilNextUtcDay(now: number): number {
  return DAY_MS - (now % DAY_MS);
}

/**
 * The daily SMS budget (SMS_DAILY_BUDGET), counted in Redis per pool and UTC day: a country with its
 * own budget is its own pool, every other country shares `*`. Without a budget for a number's pool
 * nothing is counted.
 */
export class SmsBudgetCounter {
  private readonly redis: Redis & BudgetCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly budget: SmsBudget,
    private readonly events: BudgetEvents,
  ) {
    if (!('smsBudgetTake' in redis)) {
      redis.defineCommand('smsBudgetTake', { numberOfKeys: 1, lua: TAKE });
      redis.defineCommand('smsBudgetGiveBack', { numberOfKeys: 1, lua: GIVE_BACK });
    }
    this.redis = redis as Redis & BudgetCommands;
  }

  /** The pool a country's messages are counted in, with its limit; undefined when unlimited. */
  pool(country: string): { pool: string; limit: number } | undefined {
    const own = this.budget.byCountry[country];
    if (own !== undefined) return { pool: country, limit: own };
    if (this.budget.other !== undefined) return { pool: '*', limit: this.budget.other };
    return undefined;
  }

  private key(pool: string, now: number): string {
    return `${this.prefix}:smsguard:budget:{${pool}}:${utcDay(now)}`;
  }

  async reserve(country: string, now: number): Promise<BudgetReservation> {
    const pool = this.pool(country);
    if (!pool) return { allowed: true, release: async () => undefined };
    const key = this.key(pool.pool, now);
    // Kept past the day's end so an operator can still read yesterday's total.
    const [taken, used] = await this.redis.smsBudgetTake(key, pool.limit, 2 * DAY_MS);
    if (taken !== 1) return { allowed: false, pool: pool.pool, retryAfterMs: untilNextUtcDay(now) };
    this.events.onUsage(pool.pool, used, pool.limit);
    // The place is taken: a warning that cannot be recorded must not fail the reservation (nothing
    // would give the place back), so such a warning goes untold.
    await this.crossed(pool.pool, used, pool.limit, now).catch(() => undefined);
    return { allowed: true, release: () => this.redis.smsBudgetGiveBack(key).then(() => undefined) };
  }

  /** Tells of a threshold once per pool and day, whichever instance crosses it. */
  private async crossed(pool: string, used: number, limit: number, now: number): Promise<void> {
    for (const share of THRESHOLDS) {
      const mark = Math.max(1, Math.ceil(limit * share));
      if (used !== mark) continue;
      const first = await this.redis.set(`${this.key(pool, now)}:told:${share}`, '1', 'PX', 2 * DAY_MS, 'NX');
      if (first === 'OK') this.events.onThreshold(pool, share, used, limit);
    }
  }

  /** Every pool's use today. */
  async state(now: number): Promise<BudgetState[]> {
    const pools = [
      ...Object.entries(this.budget.byCountry).map(([pool, limit]) => ({ pool, limit })),
      ...(this.budget.other === undefined ? [] : [{ pool: '*', limit: this.budget.other }]),
    ];
    const states: BudgetState[] = [];
    for (const { pool, limit } of pools) {
      states.push({ pool, limit, used: Number((await this.redis.get(this.key(pool, now))) ?? 0) });
    }
    return states;
  }
}
