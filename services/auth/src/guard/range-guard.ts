import { eventMember } from '../otp/event-member.js';
import { riskRangeKey } from './risk-window.js';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Codes sent to one number range (the E.164 number without its last digits), in one step:
 * an automatic block stands until it ends; a range with at least `minSends` settled sends in 24 h
 * (sends older than a code's lifetime, whose codes had their chance) of which fewer than
 * `minConversion` were verified is blocked for `blockMs`; past `perHour` sends in the rolling hour
 * the next is refused until the oldest leaves. A safe range skips all of it and is not counted.
 * KEYS: sends, verified, block (one hash tag: the range). Returns {outcome, retryMs, reason}.
 */
const ADMIT = `
local now, hourMs, perHour = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local settleMs, minSends, minConversion = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local blockMs, member, safe, dayMs = tonumber(ARGV[7]), ARGV[8], ARGV[9], tonumber(ARGV[10])
if safe == '1' then return {'ok', 0, ''} end
local blocked = redis.call('HMGET', KEYS[3], 'until', 'reason')
if blocked[1] and tonumber(blocked[1]) > now then return {'blocked', tonumber(blocked[1]) - now, blocked[2]} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - dayMs)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - dayMs)
local settled = redis.call('ZCOUNT', KEYS[1], '-inf', now - settleMs)
if settled >= minSends then
  -- Verifications are scored by their code's send: those of the settled sends, and no others.
  local verified = redis.call('ZCOUNT', KEYS[2], '-inf', now - settleMs)
  if verified < minConversion * settled then
    redis.call('DEL', KEYS[3])
    redis.call('HSET', KEYS[3], 'reason', 'low_conversion', 'until', now + blockMs, 'at', now,
      'sends', settled, 'verified', verified)
    redis.call('PEXPIRE', KEYS[3], blockMs)
    return {'blocked', blockMs, 'low_conversion'}
  end
end
local count = redis.call('ZCOUNT', KEYS[1], now - hourMs + 1, '+inf')
if count >= perHour then
  -- The send whose leaving the hour lets the next one in: the hour's sends are the newest \`count\`
  -- of the set, and this is the one \`perHour\` from the newest. Found by rank, not by reading the
  -- hour's sends, which a busy range counts in the thousands.
  local leaving = redis.call('ZRANGE', KEYS[1], -perHour, -perHour, 'WITHSCORES')
  return {'velocity', tonumber(leaving[2]) + hourMs - now, 'velocity'}
end
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], dayMs)
return {'ok', 0, ''}
`;

/** Takes back a send the range admitted (a later check refused it). KEYS: sends. */
const RELEASE = `
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

/** A verified code counts for its range, if the range is being counted. KEYS: sends, verified. */
const VERIFIED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/** What the range looks like now, without counting anything. KEYS: sends, verified, block. */
const PEEK = `
local now, hourMs, settleMs, dayMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local block = redis.call('HGETALL', KEYS[3])
return {
  redis.call('ZCOUNT', KEYS[1], now - hourMs + 1, '+inf'),
  redis.call('ZCOUNT', KEYS[1], now - dayMs + 1, now - settleMs),
  redis.call('ZCOUNT', KEYS[2], now - dayMs + 1, now - settleMs),
  block
}
`;

interface RangeCommands {
  smsRangeAdmit(...args: Array<string | number>): Promise<[string, number, string]>;
  smsRangeRelease(key: string, member: string): Promise<number>;
  smsRangeVerified(...args: Array<string | number>): Promise<number>;
  smsRangePeek(...args: Array<string | number>): Promise<[number, number, number, string[]]>;
}

export interface RangeLimits {
  /** Digits dropped from the end of an E.164 number to name its range. */
  prefixDigits: number;
  perHour: number;
  minConversion: number;
  minSends: number;
  blockMs: number;
  /** A send older than this had its chance to be verified (a code's lifetime). */
  settleMs: number;
}

export type RangeAdmission =
  | { allowed: true; release(): Promise<void> }
  | { allowed: false; reason: 'velocity' | 'low_conversion' | string; retryAfterMs: number };

export interface RangeState {
  range: string;
  safe: boolean;
  sendsLastHour: number;
  /** Sends of the last 24 h whose codes had their chance (older than a code's lifetime). */
  settledSends: number;
  verified: number;
  block: { reason: string; until: number; at: number } | undefined;
}

/** The range a number belongs to: the E.164 number without its last `digits` digits. */
export function rangeOf(e164: string, digits: number): string {
  return e164.slice(0, Math.max(2, e164.length - digits));
}

/**
 * Per-range send counting and automatic blocks in Redis, shared by every auth instance. The keys of
 * one range share a hash tag, so each script stays in one Redis Cluster slot. The safe list is one
 * set of numbers and prefixes an operator keeps; no automatic block touches what it covers.
 */
export class RangeGuard {
  private readonly redis: Redis & RangeCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    readonly limits: RangeLimits,
  ) {
    if (!('smsRangeAdmit' in redis)) {
      redis.defineCommand('smsRangeAdmit', { numberOfKeys: 3, lua: ADMIT });
      redis.defineCommand('smsRangeRelease', { numberOfKeys: 1, lua: RELEASE });
      redis.defineCommand('smsRangeVerified', { numberOfKeys: 2, lua: VERIFIED });
      redis.defineCommand('smsRangePeek', { numberOfKeys: 3, lua: PEEK });
    }
    this.redis = redis as Redis & RangeCommands;
  }

  rangeOf(phone: string): string {
    return rangeOf(phone, this.limits.prefixDigits);
  }

  private keys(range: string) {
    const base = `${this.prefix}:smsguard:range:{${range}}`;
    return { sends: `${base}:sends`, verified: `${base}:verified`, block: `${base}:block` };
  }

  private get safeKey(): string {
    return `${this.prefix}:smsguard:safe`;
  }

  /** Whether the number, or a prefix of it, is on the safe list. */
  async isSafe(phone: string): Promise<boolean> {
    const prefixes: string[] = [];
    for (let end = 2; end <= phone.length; end += 1) prefixes.push(phone.slice(0, end));
    const found = await this.redis.smismember(this.safeKey, ...prefixes);
    return found.some((hit) => hit === 1);
  }

  /** `safeLookup` is `isSafe(phone)` when the caller started it earlier, alongside other work. */
  async admit(phone: string, now: number, safeLookup = this.isSafe(phone)): Promise<RangeAdmission> {
    const { sends, verified, block } = this.keys(this.rangeOf(phone));
    const safe = await safeLookup;
    const counted = eventMember(now);
    const l = this.limits;
    const [outcome, retryMs, reason] = await this.redis.smsRangeAdmit(
      sends,
      verified,
      block,
      now,
      HOUR_MS,
      l.perHour,
      l.settleMs,
      l.minSends,
      l.minConversion,
      l.blockMs,
      counted,
      safe ? '1' : '0',
      DAY_MS,
    );
    if (outcome === 'ok') {
      return {
        allowed: true,
        release: async () => {
          if (!safe) await this.redis.smsRangeRelease(sends, counted);
        },
      };
    }
    return { allowed: false, reason, retryAfterMs: Number(retryMs) };
  }

  /**
   * A code sent to this number at `sentAt` was verified: the range converts. Scored by the send, so
   * that conversion compares the settled sends with their own verifications; a safe number's are
   * left out, as its sends are.
   */
  async verified(phone: string, sentAt: number): Promise<void> {
    if (await this.isSafe(phone)) return;
    const { sends, verified } = this.keys(this.rangeOf(phone));
    await this.redis.smsRangeVerified(sends, verified, sentAt, eventMember(sentAt), DAY_MS);
  }

  /**
   * A range's counts and block; `range` is a number or a range (a number is reduced to its range).
   * `safe` is the safe list's answer when the caller already has it.
   */
  async state(rangeOrPhone: string, now: number, isNumber: boolean, safe?: boolean): Promise<RangeState> {
    const range = isNumber ? this.rangeOf(rangeOrPhone) : rangeOrPhone;
    const { sends, verified, block } = this.keys(range);
    const [hour, settled, converted, fields] = await this.redis.smsRangePeek(
      sends,
      verified,
      block,
      now,
      HOUR_MS,
      this.limits.settleMs,
      DAY_MS,
    );
    const blockFields: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) blockFields[fields[i] as string] = fields[i + 1] as string;
    const until = Number(blockFields.until ?? 0);
    return {
      range,
      safe: safe ?? (await this.isSafe(isNumber ? rangeOrPhone : range)),
      sendsLastHour: Number(hour),
      settledSends: Number(settled),
      verified: Number(converted),
      block:
        until > now ? { reason: blockFields.reason ?? 'unknown', until, at: Number(blockFields.at ?? 0) } : undefined,
    };
  }

  /**
   * Lifts a range's block and forgets its counts, so it does not block again at once, nor ask for a
   * challenge (`risk` mode's count of the range, RiskWindows, shares the range's hash tag).
   */
  async lift(range: string): Promise<boolean> {
    const { sends, verified, block } = this.keys(range);
    const [removed] = await Promise.all([
      this.redis.del(block, sends, verified),
      this.redis.del(riskRangeKey(this.prefix, range)),
    ]);
    return removed > 0;
  }

  async addSafe(entry: string): Promise<void> {
    await this.redis.sadd(this.safeKey, entry);
  }

  async removeSafe(entry: string): Promise<boolean> {
    return (await this.redis.srem(this.safeKey, entry)) > 0;
  }

  async safeList(): Promise<string[]> {
    return (await this.redis.smembers(this.safeKey)).sort();
  }
}
