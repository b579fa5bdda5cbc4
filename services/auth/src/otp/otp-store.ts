import { eventMember, memberTime } from './event-member.js';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

// Every script takes "now" from the caller, so a test can move the clock without sleeping; Redis
// TTLs only clean up and are set with a margin.

/**
 * Shared by the scripts below. A rolling window is a sorted set of timestamps: `windowFull` drops
 * what fell out of it and, when `limit` entries remain, returns the milliseconds until enough have
 * left for one more. `sendGap` is the least time between two codes to a phone: the resend cooldown,
 * doubled for each send beyond `free` within the hour, up to `max`. `phoneClosed` slows guessing at
 * one phone once `free` wrong tries lie within the day: each further wrong try closes verify for the
 * phone for `base`, then twice that, up to `max`; it returns the milliseconds until it opens.
 * `seenClient` lists a client that has counters of its own under the phone for as long as the
 * longest of them lives (a day), so that forgetting the phone finds them without a scan.
 */
const FUNCTIONS = `
local function windowFull(key, now, window, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then return nil end
  local leaving = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return tonumber(leaving[2]) + window - now
end
local function sendGap(key, now, hour, free, resend, base, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - hour)
  local sent = redis.call('ZCARD', key)
  if sent < free then return resend end
  return math.max(resend, math.min(max, base * 2 ^ (sent - free + 1)))
end
local function sendWait(key, now, hour, free, resend, base, max)
  local gap = sendGap(key, now, hour, free, resend, base, max)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
  if not last then return 0 end
  return math.max(0, gap - (now - tonumber(last)))
end
local function phoneClosed(key, now, day, free, base, max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - day)
  local failed = redis.call('ZCARD', key)
  if failed < free then return nil end
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local opens = tonumber(newest[2]) + math.min(max, base * 2 ^ (failed - free))
  if now < opens then return opens - now end
  return nil
end
local function seenClient(key, now, day, bucket)
  redis.call('ZADD', key, now, bucket)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - day)
  redis.call('PEXPIRE', key, day)
end
`;

/** Sliding-window counter: admits and records a call while fewer than `limit` lie within the window. */
const SLIDING_WINDOW = `${FUNCTIONS}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local retry = windowFull(KEYS[1], now, window, tonumber(ARGV[3]))
if retry then return {0, retry} end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`;

/** Takes back a call the sliding window admitted (it turned out not to count). */
const WINDOW_RELEASE = `
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

/**
 * Issues a code for one phone to one client in one step: the client's daily failure cap and hourly
 * send cap for the phone, the phone's resend gap, then replaces any previous code.
 * KEYS: code hash, phone's sends, client's sends, client's fails, the phone's clients (one hash
 * tag: the phone).
 */
const ISSUE = `${FUNCTIONS}
local now = tonumber(ARGV[1])
local hourMs, dayMs = tonumber(ARGV[2]), tonumber(ARGV[3])
local maxSends, maxFailed = tonumber(ARGV[4]), tonumber(ARGV[5])
local resendMs, backoffBase, backoffMax = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local codeHash, ttlMs, member, bucket = ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12]
-- Both may be full: the client waits for the later of the two to open.
local failedOut = windowFull(KEYS[4], now, dayMs, maxFailed)
local sentOut = windowFull(KEYS[3], now, hourMs, maxSends)
if failedOut or sentOut then return {'rate_limited', math.max(failedOut or 0, sentOut or 0)} end
local wait = sendWait(KEYS[2], now, hourMs, maxSends, resendMs, backoffBase, backoffMax)
if wait > 0 then return {'resend_too_soon', wait} end
-- A used code is renamed away, so a code still here and unexpired is one its owner may still await.
local previousExp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
local replacesLive = (previousExp ~= nil and previousExp > now) and 1 or 0
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', codeHash, 'exp', now + ttlMs, 'i', member)
redis.call('PEXPIRE', KEYS[1], ttlMs + 60000)
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, hourMs)
end
seenClient(KEYS[5], now, dayMs, bucket)
return {'ok', 0, replacesLive}
`;

/**
 * Takes back a code ISSUE gave whose message could not be queued: the code, if it is still the
 * phone's, and its place in the sends that set the resend gap, so the client's retry is not told
 * to wait for a code that never left. KEYS: code hash, phone's sends, client's sends. ARGV: the
 * issue's id, which is also its member in the sends.
 */
const WITHDRAW = `
if redis.call('HGET', KEYS[1], 'i') == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`;

/**
 * Checks a candidate and counts the attempt in one step, so parallel guesses cannot exceed the
 * limits. Refused before any comparison: a client past its daily failure cap for the phone, and
 * any client while the phone is closed after too many wrong tries from everyone. Wrong tries count
 * per client: a stranger's guesses burn the code for that stranger only, never for its owner. The
 * comparison visits every byte whatever differs. A match claims the code for this sign-in (a lease,
 * so a crashed sign-in frees it); a parallel match sees it claimed. CONSUME spends it later.
 * KEYS: code hash, phone's fails, client's fails, phone's sends, client's sends, the phone's
 * clients (one hash tag).
 */
const CHECK = `${FUNCTIONS}
local now = tonumber(ARGV[1])
local hourMs, dayMs = tonumber(ARGV[2]), tonumber(ARGV[3])
local maxSends, maxFailed = tonumber(ARGV[4]), tonumber(ARGV[5])
local resendMs, backoffBase, backoffMax = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local candidate, member, bucket = ARGV[9], ARGV[10], ARGV[11]
local maxAttempts, phoneFree, claimId, leaseMs = tonumber(ARGV[12]), tonumber(ARGV[13]), ARGV[14], tonumber(ARGV[15])
-- What ISSUE would refuse a new code for: the wrong try just counted may have filled the day.
local function nextCode()
  local failedOut = windowFull(KEYS[3], now, dayMs, maxFailed) or 0
  local sentOut = windowFull(KEYS[5], now, hourMs, maxSends) or 0
  return math.max(1, failedOut, sentOut, sendWait(KEYS[4], now, hourMs, maxSends, resendMs, backoffBase, backoffMax))
end
local retry = windowFull(KEYS[3], now, dayMs, maxFailed)
  or phoneClosed(KEYS[2], now, dayMs, phoneFree, backoffBase, backoffMax)
if retry then return {'rate_limited', retry} end
local fields = redis.call('HMGET', KEYS[1], 'h', 'exp', 't:' .. bucket, 'claim', 'claimExp', 'i')
local stored, exp, tries = fields[1], fields[2], tonumber(fields[3]) or 0
if not stored or now >= tonumber(exp) then return {'expired', 0} end
if tries >= maxAttempts then return {'attempts_exceeded', nextCode()} end
local diff = 0
if #stored ~= #candidate then diff = 1 end
for i = 1, #stored do
  diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(candidate, i) or 0))
end
if diff == 0 then
  if fields[4] and tonumber(fields[5]) > now then return {'claimed', 0} end
  redis.call('HSET', KEYS[1], 'claim', claimId, 'claimExp', now + leaseMs)
  return {'ok', tonumber(exp), fields[6] or ''}
end
tries = redis.call('HINCRBY', KEYS[1], 't:' .. bucket, 1)
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, dayMs)
end
seenClient(KEYS[6], now, dayMs, bucket)
-- A try that filled the client's day burns the code for it too, even if the day opens before the
-- code expires; tries left are what both the code and the day still allow.
local dayFull = windowFull(KEYS[3], now, dayMs, maxFailed)
if dayFull and tries < maxAttempts then redis.call('HSET', KEYS[1], 't:' .. bucket, maxAttempts) end
if tries >= maxAttempts or dayFull then return {'attempts_exceeded', nextCode()} end
return {'invalid', math.min(maxAttempts - tries, maxFailed - redis.call('ZCARD', KEYS[3]))}
`;

/**
 * Spends the code if this sign-in still holds its claim; the phone's send history stays. The spent
 * code is set aside (KEYS[2], keeping the key's expiry: a minute past the code's) for UNSPEND;
 * nothing reads it otherwise.
 */
const CONSUME = `
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
`;

/**
 * Gives a spent code back to the sign-in that spent it, when that sign-in could not open its
 * session after all (spending and opening run side by side, on a cluster in different slots): the
 * code stays valid for a retry. Never over a code issued since.
 */
const UNSPEND = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HGET', KEYS[2], 'claim') ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[2], KEYS[1])
redis.call('HDEL', KEYS[1], 'claim', 'claimExp')
return 1
`;

/** Gives a claimed code back (the sign-in failed): it stays valid for a retry. */
const RELEASE = `
if redis.call('HGET', KEYS[1], 'claim') == ARGV[1] then redis.call('HDEL', KEYS[1], 'claim', 'claimExp') end
return 1
`;

interface OtpCommands {
  otpSlidingWindow(
    key: string,
    now: number,
    windowMs: number,
    limit: number,
    member: string,
  ): Promise<[number, number]>;
  otpWindowRelease(key: string, member: string): Promise<number>;
  otpIssue(...keysThenArgs: Array<string | number>): Promise<[string, number, number?]>;
  otpWithdraw(code: string, sends: string, clientSends: string, issueId: string): Promise<number>;
  otpCheck(...keysThenArgs: Array<string | number>): Promise<[string, number, string?]>;
  otpConsume(codeKey: string, spentKey: string, claimId: string): Promise<number>;
  otpUnspend(codeKey: string, spentKey: string, claimId: string): Promise<number>;
  otpRelease(codeKey: string, claimId: string): Promise<number>;
}

export type IssueOutcome =
  | {
      result: 'ok';
      /** This issue of the phone's code (see `isCurrent`). */
      issueId: string;
      /** The phone's previous code was still valid (unused, unexpired): this one is a resend. */
      replacesLive: boolean;
      /** Takes the code back when its message could not be queued (see WITHDRAW). */
      withdraw(): Promise<void>;
    }
  | { result: 'resend_too_soon' | 'rate_limited'; retryAfterMs: number };
export type CheckOutcome =
  | { result: 'ok'; /** When the code was issued (ms). */ sentAt: number }
  | { result: 'expired' | 'claimed' }
  | { result: 'invalid'; attemptsLeft: number }
  | { result: 'attempts_exceeded' | 'rate_limited'; retryAfterMs: number };

export interface OtpLimits {
  ttlMs: number;
  /** Wrong tries of one code by one client. */
  maxAttempts: number;
  resendMs: number;
  /** Codes to one phone per client per hour; beyond as many from all clients the resend gap grows. */
  maxSendsPerHour: number;
  /** Wrong tries for one phone by one client per day. */
  maxFailedPerDay: number;
  /** Wrong tries for one phone by all clients per day before verify for it slows down. */
  phoneFailedPerDay: number;
  /** How long a matched code is held for the sign-in that matched it. */
  claimMs: number;
}

export interface Admission {
  allowed: boolean;
  retryAfterMs: number;
}

export interface VerifyReservation extends Admission {
  /** Gives the reserved try back: the verify turned out not to be a failed guess. */
  release(): Promise<void>;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Backoff steps (resend gap beyond the free sends, closed verify beyond the free failures): 1 min doubling. */
export const BACKOFF_BASE_MS = 60_000;
/** No backoff keeps a phone waiting longer than this. */
export const BACKOFF_MAX_MS = 15 * 60_000;

/**
 * OTP state in Redis. All keys of one phone share a hash tag (`{+7…}`), so each script touches a
 * single Redis Cluster slot; a client's own counters for the phone carry its bucket after the tag.
 */
export class OtpStore {
  private readonly redis: Redis & OtpCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    if (!('otpIssue' in redis)) {
      redis.defineCommand('otpSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW });
      redis.defineCommand('otpWindowRelease', { numberOfKeys: 1, lua: WINDOW_RELEASE });
      redis.defineCommand('otpIssue', { numberOfKeys: 5, lua: ISSUE });
      redis.defineCommand('otpWithdraw', { numberOfKeys: 3, lua: WITHDRAW });
      redis.defineCommand('otpCheck', { numberOfKeys: 6, lua: CHECK });
      redis.defineCommand('otpConsume', { numberOfKeys: 2, lua: CONSUME });
      redis.defineCommand('otpUnspend', { numberOfKeys: 2, lua: UNSPEND });
      redis.defineCommand('otpRelease', { numberOfKeys: 1, lua: RELEASE });
    }
    this.redis = redis as Redis & OtpCommands;
  }

  private keys(phone: string, bucket: string) {
    const base = `${this.prefix}:otp:{${phone}}`;
    return {
      code: base,
      sends: `${base}:sends`,
      fails: `${base}:fails`,
      clients: `${base}:clients`,
      clientSends: `${base}:sends:${bucket}`,
      clientFails: `${base}:fails:${bucket}`,
    };
  }

  private limitArgs(limits: OtpLimits): number[] {
    return [
      HOUR_MS,
      DAY_MS,
      limits.maxSendsPerHour,
      limits.maxFailedPerDay,
      limits.resendMs,
      BACKOFF_BASE_MS,
      BACKOFF_MAX_MS,
    ];
  }

  /** Counts one send-code call from a client; refused once `limit` lie within the last hour. */
  async admitSend(bucket: string, limit: number, now: number): Promise<Admission> {
    const [allowed, retryAfterMs] = await this.redis.otpSlidingWindow(
      `${this.prefix}:ip:{${bucket}}:send-code`,
      now,
      HOUR_MS,
      limit,
      eventMember(now),
    );
    return { allowed: allowed === 1, retryAfterMs };
  }

  /**
   * Reserves one of a client's failed-verify tries for the hour before its guess is looked at, so
   * parallel guesses cannot exceed the budget; a verify that was not a failed guess gives it back.
   */
  async reserveVerify(bucket: string, limit: number, now: number): Promise<VerifyReservation> {
    const key = `${this.prefix}:ip:{${bucket}}:verify`;
    const reserved = eventMember(now);
    const [allowed, retryAfterMs] = await this.redis.otpSlidingWindow(key, now, HOUR_MS, limit, reserved);
    return {
      allowed: allowed === 1,
      retryAfterMs,
      release: async () => {
        if (allowed === 1) await this.redis.otpWindowRelease(key, reserved);
      },
    };
  }

  async issue(phone: string, bucket: string, codeHash: string, limits: OtpLimits, now: number): Promise<IssueOutcome> {
    const k = this.keys(phone, bucket);
    const member = eventMember(now);
    const [result, retryAfterMs, replacesLive] = await this.redis.otpIssue(
      k.code,
      k.sends,
      k.clientSends,
      k.clientFails,
      k.clients,
      now,
      ...this.limitArgs(limits),
      codeHash,
      limits.ttlMs,
      member,
      bucket,
    );
    if (result !== 'ok') return { result: result as 'resend_too_soon' | 'rate_limited', retryAfterMs };
    return {
      result: 'ok',
      issueId: member,
      replacesLive: replacesLive === 1,
      withdraw: async () => {
        await this.redis.otpWithdraw(k.code, k.sends, k.clientSends, member);
      },
    };
  }

  async check(
    phone: string,
    bucket: string,
    candidateHash: string,
    claimId: string,
    limits: OtpLimits,
    now: number,
  ): Promise<CheckOutcome> {
    const k = this.keys(phone, bucket);
    const [result, value, issueId] = await this.redis.otpCheck(
      k.code,
      k.fails,
      k.clientFails,
      k.sends,
      k.clientSends,
      k.clients,
      now,
      ...this.limitArgs(limits),
      candidateHash,
      eventMember(now),
      bucket,
      limits.maxAttempts,
      limits.phoneFailedPerDay,
      claimId,
      limits.claimMs,
    );
    if (result === 'invalid') return { result, attemptsLeft: value };
    if (result === 'rate_limited' || result === 'attempts_exceeded') return { result, retryAfterMs: value };
    // The issue names its time (eventMember); the expiry less the lifetime for one that does not.
    if (result === 'ok') return { result, sentAt: memberTime(issueId ?? '') ?? Number(value) - limits.ttlMs };
    return { result: result as 'expired' | 'claimed' };
  }

  async consume(phone: string, claimId: string): Promise<boolean> {
    const base = `${this.prefix}:otp:{${phone}}`;
    return (await this.redis.otpConsume(base, `${base}:spent`, claimId)) === 1;
  }

  /**
   * Whether this issue is still the phone's code: not replaced by a newer one, used, expired or
   * forgotten. The SMS worker asks before sending a login code.
   */
  async isCurrent(phone: string, issueId: string): Promise<boolean> {
    return (await this.redis.hget(`${this.prefix}:otp:{${phone}}`, 'i')) === issueId;
  }

  async unspend(phone: string, claimId: string): Promise<void> {
    const base = `${this.prefix}:otp:{${phone}}`;
    await this.redis.otpUnspend(base, `${base}:spent`, claimId);
  }

  async release(phone: string, claimId: string): Promise<void> {
    await this.redis.otpRelease(`${this.prefix}:otp:{${phone}}`, claimId);
  }

  /** Removes the phone's code and every counter kept under it (its own and each client's). */
  async forget(phone: string): Promise<void> {
    const base = `${this.prefix}:otp:{${phone}}`;
    const clients = await this.redis.zrange(`${base}:clients`, '0', '-1');
    const perClient = clients.flatMap((bucket) => [`${base}:sends:${bucket}`, `${base}:fails:${bucket}`]);
    // One command: the phone's keys share one slot. Only the clients read leave the list, so one
    // that a send-code adds meanwhile stays listed for the next forgetting.
    await this.redis.del(base, `${base}:spent`, `${base}:sends`, `${base}:fails`, ...perClient);
    if (clients.length > 0) await this.redis.zrem(`${base}:clients`, ...clients);
  }
}
