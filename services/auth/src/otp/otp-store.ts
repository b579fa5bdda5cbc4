import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

// Every script takes "now" from the caller, so a test can move the clock without sleeping; Redis
// TTLs only clean up and are set with a margin.

/**
 * Shared by the scripts below: a rolling window kept as a sorted set of timestamps. Drops what fell
 * out of the window; when `limit` entries remain, returns the milliseconds until the oldest leaves.
 */
const WINDOW_FULL = `
local function windowFull(key, now, window, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then return nil end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
`;

/** Sliding-window counter: admits and records a call while fewer than `limit` lie within the window. */
const SLIDING_WINDOW = `${WINDOW_FULL}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local retry = windowFull(KEYS[1], now, window, tonumber(ARGV[3]))
if retry then return {0, retry} end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`;

/**
 * Issues a code for one phone in one step: resend cooldown, hourly send limit, daily failure cap,
 * then replaces any previous code. KEYS: code hash, sends zset, fails zset (one hash tag: the phone).
 */
const ISSUE = `${WINDOW_FULL}
local now = tonumber(ARGV[1])
local resendMs = tonumber(ARGV[2])
local maxSends = tonumber(ARGV[3])
local hourMs = tonumber(ARGV[4])
local codeHash = ARGV[5]
local ttlMs = tonumber(ARGV[6])
local maxFailed = tonumber(ARGV[7])
local dayMs = tonumber(ARGV[8])
local member = ARGV[9]
local sent = tonumber(redis.call('HGET', KEYS[1], 'sent'))
if sent and now - sent < resendMs then
  return {'resend_too_soon', resendMs - (now - sent)}
end
local retry = windowFull(KEYS[2], now, hourMs, maxSends) or windowFull(KEYS[3], now, dayMs, maxFailed)
if retry then return {'rate_limited', retry} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', codeHash, 'exp', now + ttlMs, 'tries', 0, 'sent', now)
redis.call('PEXPIRE', KEYS[1], math.max(ttlMs, resendMs) + 60000)
redis.call('ZADD', KEYS[2], now, member)
redis.call('PEXPIRE', KEYS[2], hourMs)
return {'ok', 0}
`;

/**
 * Checks a candidate and counts the attempt in one step, so parallel guesses cannot exceed the
 * limit. The comparison visits every byte whatever differs. A success does not consume the code
 * (CONSUME does, after sign-in succeeded). KEYS: code hash, fails zset.
 */
const CHECK = `${WINDOW_FULL}
local now = tonumber(ARGV[1])
local candidate = ARGV[2]
local maxAttempts = tonumber(ARGV[3])
local maxFailed = tonumber(ARGV[4])
local dayMs = tonumber(ARGV[5])
local retry = windowFull(KEYS[2], now, dayMs, maxFailed)
if retry then return {'rate_limited', retry} end
local fields = redis.call('HMGET', KEYS[1], 'h', 'exp', 'burned')
local stored, exp, burned = fields[1], fields[2], fields[3]
if burned == '1' then return {'attempts_exceeded', 0} end
if not stored or now >= tonumber(exp) then return {'expired', 0} end
local diff = 0
if #stored ~= #candidate then diff = 1 end
for i = 1, #stored do
  diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(candidate, i) or 0))
end
if diff == 0 then return {'ok', 0} end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('PEXPIRE', KEYS[2], dayMs)
if tries >= maxAttempts then
  redis.call('HDEL', KEYS[1], 'h')
  redis.call('HSET', KEYS[1], 'burned', '1')
  return {'attempts_exceeded', 0}
end
return {'invalid', maxAttempts - tries}
`;

/** Spends the code if it is still the one that was checked; the resend cooldown mark stays. */
const CONSUME = `
local fields = redis.call('HMGET', KEYS[1], 'h', 'exp')
if fields[1] ~= ARGV[1] or tonumber(ARGV[2]) >= tonumber(fields[2]) then return 0 end
redis.call('HDEL', KEYS[1], 'h', 'exp', 'tries')
return 1
`;

interface OtpCommands {
  otpSlidingWindow(key: string, now: number, windowMs: number, limit: number, member: string): Promise<[number, number]>;
  otpIssue(codeKey: string, sendsKey: string, failsKey: string, ...args: Array<string | number>): Promise<[string, number]>;
  otpCheck(codeKey: string, failsKey: string, ...args: Array<string | number>): Promise<[string, number]>;
  otpConsume(codeKey: string, codeHash: string, now: number): Promise<number>;
}

export type IssueOutcome = { result: 'ok' } | { result: 'resend_too_soon' | 'rate_limited'; retryAfterMs: number };
export type CheckOutcome =
  | { result: 'ok' | 'expired' | 'attempts_exceeded' }
  | { result: 'invalid'; attemptsLeft: number }
  | { result: 'rate_limited'; retryAfterMs: number };

export interface OtpLimits {
  ttlMs: number;
  maxAttempts: number;
  resendMs: number;
  maxSendsPerHour: number;
  maxFailedPerDay: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const member = (now: number) => `${now}:${randomBytes(6).toString('base64url')}`;

/**
 * OTP state in Redis. All keys of one phone share a hash tag (`{+7…}`), so each script touches a
 * single Redis Cluster slot.
 */
export class OtpStore {
  private readonly redis: Redis & OtpCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    if (!('otpIssue' in redis)) {
      redis.defineCommand('otpSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW });
      redis.defineCommand('otpIssue', { numberOfKeys: 3, lua: ISSUE });
      redis.defineCommand('otpCheck', { numberOfKeys: 2, lua: CHECK });
      redis.defineCommand('otpConsume', { numberOfKeys: 1, lua: CONSUME });
    }
    this.redis = redis as Redis & OtpCommands;
  }

  private keys(phone: string) {
    const base = `${this.prefix}:otp:{${phone}}`;
    return { code: base, sends: `${base}:sends`, fails: `${base}:fails` };
  }

  /** Counts one send-code call from an address; refused once `limit` lie within the last hour. */
  async admitIp(ip: string, limit: number, now: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const [allowed, retryAfterMs] = await this.redis.otpSlidingWindow(`${this.prefix}:ip:{${ip}}:send-code`, now, HOUR_MS, limit, member(now));
    return { allowed: allowed === 1, retryAfterMs };
  }

  async issue(phone: string, codeHash: string, limits: OtpLimits, now: number): Promise<IssueOutcome> {
    const k = this.keys(phone);
    const [result, retryAfterMs] = await this.redis.otpIssue(
      k.code, k.sends, k.fails,
      now, limits.resendMs, limits.maxSendsPerHour, HOUR_MS, codeHash, limits.ttlMs, limits.maxFailedPerDay, DAY_MS, member(now),
    );
    return result === 'ok' ? { result: 'ok' } : { result: result as 'resend_too_soon' | 'rate_limited', retryAfterMs };
  }

  async check(phone: string, candidateHash: string, limits: OtpLimits, now: number): Promise<CheckOutcome> {
    const k = this.keys(phone);
    const [result, value] = await this.redis.otpCheck(k.code, k.fails, now, candidateHash, limits.maxAttempts, limits.maxFailedPerDay, DAY_MS, member(now));
    if (result === 'invalid') return { result, attemptsLeft: value };
    if (result === 'rate_limited') return { result, retryAfterMs: value };
    return { result: result as 'ok' | 'expired' | 'attempts_exceeded' };
  }

  async consume(phone: string, codeHash: string, now: number): Promise<boolean> {
    return (await this.redis.otpConsume(this.keys(phone).code, codeHash, now)) === 1;
  }
}
