import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import { eventMember } from '../otp/event-member.js';

const HOUR_MS = 3_600_000;

/**
 * Counts this call in a rolling hour and answers how many were there before it, in one step: a
 * burst of calls at once is judged call by call, not all against the count from before the burst.
 * Past ARGV[4] members nothing more is added (the answer is already "past the threshold"), which
 * bounds the set whatever the traffic. KEYS: the window. Returns {before, added}.
 */
const TAKE = `
local now, windowMs, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
local before = redis.call('ZCARD', KEYS[1])
if before >= cap then return {before, 0} end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], windowMs)
return {before, 1}
`;

/** A range's risk window; it shares the range's hash tag with RangeGuard's keys (one slot). */
export function riskRangeKey(prefix: string, range: string): string {
  return `${prefix}:smsguard:risk:range:{${range}}`;
}

interface RiskCommands {
  smsRiskTake(key: string, now: number, windowMs: number, member: string, cap: number): Promise<[number, number]>;
}

export interface RiskTake {
  /** Calls counted in the hour before this one. */
  before: number;
  /** Takes this call back out (it was refused at the challenge). */
  release(): Promise<void>;
}

/**
 * The counts `CAPTCHA_MODE=risk` judges a send-code by: calls from one client, and codes asked for
 * one number range, that passed the challenge step within the hour. Kept apart from the limits'
 * own windows, which count later steps: read from those, every call of a burst saw the count from
 * before the burst and none was asked for a challenge.
 */
export class RiskWindows {
  private readonly redis: Redis & RiskCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    if (!('smsRiskTake' in redis)) redis.defineCommand('smsRiskTake', { numberOfKeys: 1, lua: TAKE });
    this.redis = redis as Redis & RiskCommands;
  }

  private take(key: string, threshold: number, now: number): Promise<RiskTake> {
    const member = eventMember(now);
    return this.redis.smsRiskTake(key, now, HOUR_MS, member, Math.max(4 * threshold, 16)).then(([before, added]) => ({
      before: Number(before),
      release: async () => {
        if (added === 1) await this.redis.zrem(key, member);
      },
    }));
  }

  /** A client: an IPv4 address or an IPv6 /64 (the limits' own buckets). */
  client(bucket: string, threshold: number, now: number): Promise<RiskTake> {
    return this.take(`${this.prefix}:smsguard:risk:client:{${bucket}}`, threshold, now);
  }

  range(range: string, threshold: number, now: number): Promise<RiskTake> {
    return this.take(riskRangeKey(this.prefix, range), threshold, now);
  }
}
