import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '@refstack/shared/contracts';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

/**
 * Refresh sessions. A refresh token is `<session id>.<256 random bits>`; only its SHA-256 is kept.
 * Each session (a rotation family) is one hash plus its spent token hashes, under one hash tag (the
 * session id). The session's absolute expiry is set once at creation; rotation never extends it.
 *
 * Spent hashes are kept in a sorted set by the time they were spent, the newest SPENT_KEPT of them:
 * a session rotates at most SPENT_KEPT times in SPENT_WINDOW_MS, so any token spent within that
 * window is still recognised (and its reuse ends the session), and a client refreshing in a loop
 * cannot grow the session's record without bound. The previous version kept spent hashes in a plain
 * set (`:spent`): it is still read, and written too, held to as many entries, so that instances of
 * either version recognise reuse during a rolling deploy.
 */
export const SPENT_KEPT = 1000;
/**
 * How long an index entry may stand without its session's hash: a session's entry and hash are
 * written together but not atomically (on a cluster they live on different nodes), so a young entry
 * whose hash is missing may belong to a session being created. A listing keeps such an entry; an
 * ending marks the session ended for as long, so that it is not created after all.
 */
export const INDEX_GRACE_MS = 60_000;
export const SPENT_WINDOW_MS = 3_600_000;

// A session ended while it was being created (see END) is not created after all.
const CREATE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'current', ARGV[1], 'sub', ARGV[2], 'phone', ARGV[3], 'roles', ARGV[4],
  'created', ARGV[6], 'last_used', ARGV[6], 'auth_time', ARGV[7], 'device', ARGV[8], 'ip', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

// Ends a listed session: its hash goes with its spent records. When there was no hash, the session
// may be being created (its index entry is written first, on another node of a cluster): a mark
// that it was ended, in its own slot, keeps CREATE from writing it after this.
const END = `
local ended = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3])
if ended == 0 then redis.call('SET', KEYS[4], '1', 'PX', ARGV[1]) end
return ended
`;

// A presented token that is no longer current: spent (in either record) is reuse. Reuse marks the
// session ended and keeps its records: the caller announces it, then deletes it (see
// TokenService), and until then any token of the family is answered as reuse again, so that an
// announcement that failed is made by the next try.
const WAS_SPENT = `
local function was_spent(presented)
  return redis.call('ZSCORE', KEYS[3], presented) or redis.call('SISMEMBER', KEYS[2], presented) == 1
end
local function reuse(session, presented)
  if presented ~= session[1] and not was_spent(presented) then return {'invalid'} end
  redis.call('HSET', KEYS[1], 'reused', '1')
  return {'reused', session[2]}
end
`;

// Presenting the current token rotates it, unless the session rotated SPENT_KEPT times within the
// window (then: how long until the oldest of them leaves it); presenting a spent one revokes the
// whole family.
const ROTATE = `${WAS_SPENT}
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'phone', 'roles', 'auth_time', 'reused')
local current = session[1]
if not current then return {'invalid'} end
if session[6] then return reuse(session, ARGV[1]) end
if current == ARGV[1] then
  local now, kept, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  if redis.call('ZCARD', KEYS[3]) >= kept then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    local free_at = tonumber(oldest[2]) + window
    if free_at > now then return {'limited', tostring(free_at - now)} end
  end
  redis.call('ZADD', KEYS[3], now, current)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(kept + 1))
  redis.call('PEXPIRE', KEYS[3], math.max(redis.call('PTTL', KEYS[1]), 1))
  -- Also in the earlier record, which instances of the previous version read (a rolling deploy),
  -- held to as many entries (one dropped at random past that).
  redis.call('SADD', KEYS[2], current)
  if redis.call('SCARD', KEYS[2]) > kept then redis.call('SPOP', KEYS[2]) end
  redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1))
  redis.call('HSET', KEYS[1], 'current', ARGV[2], 'last_used', ARGV[3])
  return {'ok', session[2], session[3], session[4], session[5]}
end
return reuse(session, ARGV[1])
`;

// For clients that keep one refresh token for the session's whole life: the current token is
// answered without rotating it; a spent one is reuse exactly as in ROTATE and revokes the family.
// Only the last use is written, so the session's absolute expiry stays where CREATE set it.
const IDENTIFY = `${WAS_SPENT}
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'phone', 'roles', 'auth_time', 'reused')
local current = session[1]
if not current then return {'invalid'} end
if session[6] then return reuse(session, ARGV[1]) end
if current == ARGV[1] then
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'last_used', ARGV[2]) end
  return {'ok', session[2], session[3], session[4], session[5]}
end
return reuse(session, ARGV[1])
`;

const REVOKE = `${WAS_SPENT}
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'reused')
local current = session[1]
if not current then return {'invalid'} end
if session[3] then return reuse(session, ARGV[1]) end
if current == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return {'ok', session[2]}
end
return reuse(session, ARGV[1])
`;

// An index's expiry is set when it has none and otherwise only extended (PEXPIRE's NX and GT
// would need Redis 7).
const EXTEND_INDEX = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
`;

interface SessionCommands {
  sessionIndexExtend(index: string, ttlMs: number): Promise<number>;
  sessionEnd(
    sessionKey: string,
    spentKey: string,
    spentAtKey: string,
    endedKey: string,
    markMs: number,
  ): Promise<number>;
  sessionCreate(
    sessionKey: string,
    endedKey: string,
    current: string,
    sub: string,
    phone: string,
    roles: string,
    ttlMs: number,
    created: number,
    authTime: number,
    device: string,
    ip: string,
  ): Promise<number>;
  sessionRotate(
    sessionKey: string,
    spentKey: string,
    spentAtKey: string,
    presented: string,
    next: string,
    at: number,
    kept: number,
    windowMs: number,
  ): Promise<string[]>;
  sessionIdentify(
    sessionKey: string,
    spentKey: string,
    spentAtKey: string,
    presented: string,
    at: number | '',
  ): Promise<string[]>;
  sessionRevoke(sessionKey: string, spentKey: string, spentAtKey: string, presented: string): Promise<string[]>;
}

export interface SessionIdentity {
  sub: string;
  phone: string;
  roles: string[];
}

/** Where and when a session began: shown in the caller's list of sessions. */
export interface SessionOrigin {
  /** A label for the device, from its User-Agent. */
  device: string;
  /** The client's address, masked (a /24 or a /48). */
  ip: string;
}

/** A live session as its owner's list shows it. */
export interface SessionInfo extends SessionOrigin {
  id: string;
  createdAt: number;
  lastUsedAt: number;
  /** Seconds since the epoch: the sign-in with an SMS code that started the session. */
  authTime: number;
}

/** What a valid refresh token gives: the session's identity, its id and its sign-in time. */
export interface SessionState {
  identity: SessionIdentity;
  sid: string;
  authTime: number;
}

export type RotateOutcome =
  | { result: 'ok'; state: SessionState; refresh: string }
  /** The session rotated SPENT_KEPT times within SPENT_WINDOW_MS; nothing was spent. */
  | { result: 'limited'; retryAfterMs: number }
  | { result: 'invalid' }
  | { result: 'reused'; sid: string; sub: string | undefined };

export type IdentifyOutcome =
  | { result: 'ok'; state: SessionState }
  | { result: 'invalid' }
  | { result: 'reused'; sid: string; sub: string | undefined };

const TOKEN_FORMAT = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

const parseRoles = (roles: string | undefined) => JSON.parse(roles ?? '[]') as string[];

function outcomeOf(sid: string, reply: string[]): IdentifyOutcome {
  const [result, sub, phone, roles, authTime] = reply;
  if (result === 'reused') return { result: 'reused', sid, sub };
  if (result !== 'ok' || sub === undefined || phone === undefined) return { result: 'invalid' };
  return {
    result: 'ok',
    state: { identity: { sub, phone, roles: parseRoles(roles) }, sid, authTime: Number(authTime ?? 0) },
  };
}

/**
 * Each user's sessions are also indexed (a sorted set per user, under the user's own hash tag), so
 * that they can be listed and ended together. The index is written before the session, so a session
 * is never missing from it; an entry whose session expired is dropped when the index is read.
 */
/** Sessions ended at once: every id listed (each is announced), and how many were still live. */
export interface EndedSessions {
  ids: string[];
  live: number;
}

/** Tells every process that these sessions' access tokens are no longer valid. */
export type Announce = (sids: string[]) => Promise<void>;

const nothingToAnnounce: Announce = async () => undefined;

export class SessionStore {
  private readonly redis: Redis & SessionCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    const commands = [
      ['sessionCreate', 2, CREATE],
      ['sessionEnd', 4, END],
      ['sessionRotate', 3, ROTATE],
      ['sessionIdentify', 3, IDENTIFY],
      ['sessionRevoke', 3, REVOKE],
      ['sessionIndexExtend', 1, EXTEND_INDEX],
    ] as const;
    // A connection shared by several stores (tests) gets each command once.
    for (const [name, numberOfKeys, lua] of commands) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
    this.redis = redis as Redis & SessionCommands;
  }

  private keys(sessionId: string) {
    const base = `${this.prefix}:session:{${sessionId}}`;
    return { session: base, spent: `${base}:spent`, spentAt: `${base}:spent-at`, ended: `${base}:ended` };
  }

  private indexKey(sub: string): string {
    return `${this.prefix}:user-sessions:{${sub}}`;
  }

  private static newToken(sessionId: string): string {
    return `${sessionId}.${randomBytes(32).toString('base64url')}`;
  }

  /** Starts a session and returns its id and first refresh token. */
  async create(
    identity: SessionIdentity,
    ttlSeconds: number,
    origin: SessionOrigin,
  ): Promise<{ sid: string; refresh: string; authTime: number }> {
    const sessionId = randomBytes(16).toString('base64url');
    const token = SessionStore.newToken(sessionId);
    const now = this.now();
    const authTime = Math.floor(now / 1000);
    const index = this.indexKey(identity.sub);
    // Sent together, one round trip where auto-pipelining batches them. Should one fail, the caller
    // is refused and never gets this session's tokens: a session left behind can never be used.
    const [, , created] = await Promise.all([
      this.redis.zadd(index, now, sessionId),
      // The index lives as long as its longest-lived session: a new one set at a shorter lifetime
      // (the setting lowered) must not take the older sessions out of the list and out of reach of
      // ending them together.
      this.redis.sessionIndexExtend(index, ttlSeconds * 1000),
      this.redis.sessionCreate(
        this.keys(sessionId).session,
        this.keys(sessionId).ended,
        hashToken(token),
        identity.sub,
        identity.phone,
        JSON.stringify(identity.roles),
        ttlSeconds * 1000,
        now,
        authTime,
        origin.device,
        origin.ip,
      ),
    ]);
    // Every session of the user was ended while this one was being created: it was ended too.
    if (created !== 1)
      throw new AppError('service_unavailable', 'The sign-in could not be completed; try again.', { retryAfter: 1 });
    return { sid: sessionId, refresh: token, authTime };
  }

  async rotate(presented: string): Promise<RotateOutcome> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const sessionId = match[1];
    const next = SessionStore.newToken(sessionId);
    const k = this.keys(sessionId);
    const reply = await this.redis.sessionRotate(
      k.session,
      k.spent,
      k.spentAt,
      hashToken(presented),
      hashToken(next),
      this.now(),
      SPENT_KEPT,
      SPENT_WINDOW_MS,
    );
    if (reply[0] === 'limited') return { result: 'limited', retryAfterMs: Number(reply[1]) };
    const outcome = outcomeOf(sessionId, reply);
    return outcome.result === 'ok' ? { ...outcome, refresh: next } : outcome;
  }

  /**
   * The session behind its current refresh token, which stays current (no rotation). A spent token
   * is reuse and revokes the session, as in `rotate`. `touch`: record this as the session's last use.
   */
  async identify(presented: string, touch = true): Promise<IdentifyOutcome> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const k = this.keys(match[1]);
    return outcomeOf(
      match[1],
      await this.redis.sessionIdentify(k.session, k.spent, k.spentAt, hashToken(presented), touch ? this.now() : ''),
    );
  }

  /** Ends the session of a refresh token; says whose it was. */
  async revoke(
    presented: string,
  ): Promise<{ result: 'ok' | 'reused'; sid: string; sub: string | undefined } | { result: 'invalid' }> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const k = this.keys(match[1]);
    const [result, sub] = await this.redis.sessionRevoke(k.session, k.spent, k.spentAt, hashToken(presented));
    if (result !== 'ok' && result !== 'reused') return { result: 'invalid' };
    return { result, sid: match[1], sub };
  }

  /** Whether the session exists, belongs to `sub` and was not ended by reuse. */
  async isLive(sid: string, sub: string): Promise<boolean> {
    const [owner, reused] = await this.redis.hmget(this.keys(sid).session, 'sub', 'reused');
    return owner === sub && reused === null;
  }

  /**
   * The user's live sessions, newest first; index entries of expired sessions are dropped, but not
   * one younger than INDEX_GRACE_MS: its session may be being created (its hash written after the
   * entry, or on another node of a cluster), and dropping the entry would hide it from being ended.
   */
  async list(sub: string): Promise<SessionInfo[]> {
    const entries = await this.redis.zrevrange(this.indexKey(sub), '0', '-1', 'WITHSCORES');
    const sids = entries.filter((_, i) => i % 2 === 0);
    const young = new Set(sids.filter((_, i) => Number(entries[2 * i + 1]) > this.now() - INDEX_GRACE_MS));
    const found = await Promise.all(
      sids.map(async (sid) => [sid, await this.redis.hgetall(this.keys(sid).session)] as const),
    );
    const gone = found.filter(([sid, h]) => h['sub'] !== sub && !young.has(sid)).map(([sid]) => sid);
    if (gone.length > 0) await this.redis.zrem(this.indexKey(sub), ...gone);
    return found
      .filter(([, h]) => h['sub'] === sub && h['reused'] === undefined)
      .map(([sid, h]) => ({
        id: sid,
        createdAt: Number(h['created'] ?? 0),
        lastUsedAt: Number(h['last_used'] ?? h['created'] ?? 0),
        authTime: Number(h['auth_time'] ?? 0),
        device: h['device'] ?? '',
        ip: h['ip'] ?? '',
      }));
  }

  /**
   * Ends one of the user's sessions; false when it is not (or no longer) theirs. `announce` is told
   * before anything is deleted: should it fail, the session is still there for a retry to end and
   * announce, where a session deleted first would leave its access tokens unannounced for good.
   */
  async end(sub: string, sid: string, announce: Announce = nothingToAnnounce): Promise<boolean> {
    if (!(await this.isLive(sid, sub))) return false;
    await announce([sid]);
    const k = this.keys(sid);
    await this.redis.del(k.session, k.spent, k.spentAt);
    await this.redis.zrem(this.indexKey(sub), sid);
    return true;
  }

  /** Ends every session of the user but `except`; `announce` as in `end`. */
  async endAll(sub: string, except?: string, announce: Announce = nothingToAnnounce): Promise<EndedSessions> {
    const sids = (await this.redis.zrange(this.indexKey(sub), '0', '-1')).filter((sid) => sid !== except);
    return this.endListed(sub, sids, announce);
  }

  /**
   * Ends the user's sessions begun at or before `before` (seconds since the epoch, as `authTime`):
   * those a revocation of the user covers. Later ones (a sign-in after an unblock) stay.
   */
  async endBegunBy(sub: string, before: number, announce: Announce = nothingToAnnounce): Promise<EndedSessions> {
    // Index scores are the creation times in ms; authTime is their whole second.
    const sids = await this.redis.zrangebyscore(this.indexKey(sub), '-inf', `(${(before + 1) * 1000}`);
    return this.endListed(sub, sids, announce);
  }

  /**
   * Ends the listed sessions. All of them are to be announced: an access token refreshed just before
   * its session's hash expired outlives it, so they are announced before any is deleted, and the
   * index keeps them until they are: a retry finds them again. Only those whose hash was still
   * there count as ended.
   */
  private async endListed(sub: string, sids: string[], announce: Announce): Promise<EndedSessions> {
    if (sids.length === 0) return { ids: sids, live: 0 };
    await announce(sids);
    const wasLive = await Promise.all(
      sids.map(async (sid) => {
        const k = this.keys(sid);
        return (await this.redis.sessionEnd(k.session, k.spent, k.spentAt, k.ended, INDEX_GRACE_MS)) === 1;
      }),
    );
    await this.redis.zrem(this.indexKey(sub), ...sids);
    return { ids: sids, live: wasLive.filter(Boolean).length };
  }

  /** Drops an index entry whose session ended by itself (a logout). */
  async unindex(sub: string, sid: string): Promise<void> {
    await this.redis.zrem(this.indexKey(sub), sid);
  }

  /** Deletes a session that reuse ended, once it was announced; its index entry too, at best. */
  async forgetReused(sid: string, sub: string | undefined): Promise<void> {
    const k = this.keys(sid);
    await this.redis.del(k.session, k.spent, k.spentAt);
    if (sub !== undefined) await this.redis.zrem(this.indexKey(sub), sid).catch(() => undefined);
  }
}
