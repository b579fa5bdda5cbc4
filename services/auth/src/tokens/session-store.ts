import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

/**
 * Refresh sessions. A refresh token is `<session id>.<256 random bits>`; only its SHA-256 is kept.
 * Each session (a rotation family) is one hash plus a set of spent token hashes, under one hash tag
 * (the session id). The session's absolute expiry is set once at creation; rotation never extends it.
 */

const CREATE = `
redis.call('HSET', KEYS[1], 'current', ARGV[1], 'sub', ARGV[2], 'phone', ARGV[3], 'roles', ARGV[4],
  'created', ARGV[6], 'last_used', ARGV[6], 'auth_time', ARGV[7], 'device', ARGV[8], 'ip', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

// Presenting the current token rotates it; presenting a spent one revokes the whole family.
const ROTATE = `
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'phone', 'roles', 'auth_time')
local current = session[1]
if not current then return {'invalid'} end
if current == ARGV[1] then
  redis.call('SADD', KEYS[2], current)
  redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1))
  redis.call('HSET', KEYS[1], 'current', ARGV[2], 'last_used', ARGV[3])
  return {'ok', session[2], session[3], session[4], session[5]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused', session[2]}
end
return {'invalid'}
`;

// For clients that keep one refresh token for the session's whole life: the current token is
// answered without rotating it; a spent one is reuse exactly as in ROTATE and revokes the family.
// Only the last use is written, so the session's absolute expiry stays where CREATE set it.
const IDENTIFY = `
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'phone', 'roles', 'auth_time')
local current = session[1]
if not current then return {'invalid'} end
if current == ARGV[1] then
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'last_used', ARGV[2]) end
  return {'ok', session[2], session[3], session[4], session[5]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused', session[2]}
end
return {'invalid'}
`;

const REVOKE = `
local session = redis.call('HMGET', KEYS[1], 'current', 'sub')
local current = session[1]
if not current then return {'invalid'} end
if current == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'ok', session[2]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused', session[2]}
end
return {'invalid'}
`;

// An index's expiry is set when it has none and otherwise only extended (PEXPIRE's NX and GT
// would need Redis 7).
const EXTEND_INDEX = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
`;

interface SessionCommands {
  sessionIndexExtend(index: string, ttlMs: number): Promise<number>;
  sessionCreate(
    sessionKey: string,
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
  sessionRotate(sessionKey: string, spentKey: string, presented: string, next: string, at: number): Promise<string[]>;
  sessionIdentify(sessionKey: string, spentKey: string, presented: string, at: number | ''): Promise<string[]>;
  sessionRevoke(sessionKey: string, spentKey: string, presented: string): Promise<string[]>;
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
      ['sessionCreate', 1, CREATE],
      ['sessionRotate', 2, ROTATE],
      ['sessionIdentify', 2, IDENTIFY],
      ['sessionRevoke', 2, REVOKE],
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
    return { session: base, spent: `${base}:spent` };
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
    await Promise.all([
      this.redis.zadd(index, now, sessionId),
      // The index lives as long as its longest-lived session: a new one set at a shorter lifetime
      // (the setting lowered) must not take the older sessions out of the list and out of reach of
      // ending them together.
      this.redis.sessionIndexExtend(index, ttlSeconds * 1000),
      this.redis.sessionCreate(
        this.keys(sessionId).session,
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
    return { sid: sessionId, refresh: token, authTime };
  }

  async rotate(presented: string): Promise<RotateOutcome> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const sessionId = match[1];
    const next = SessionStore.newToken(sessionId);
    const k = this.keys(sessionId);
    const reply = await this.redis.sessionRotate(k.session, k.spent, hashToken(presented), hashToken(next), this.now());
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
      await this.redis.sessionIdentify(k.session, k.spent, hashToken(presented), touch ? this.now() : ''),
    );
  }

  /** Ends the session of a refresh token; says whose it was. */
  async revoke(
    presented: string,
  ): Promise<{ result: 'ok' | 'reused'; sid: string; sub: string | undefined } | { result: 'invalid' }> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const k = this.keys(match[1]);
    const [result, sub] = await this.redis.sessionRevoke(k.session, k.spent, hashToken(presented));
    if (result !== 'ok' && result !== 'reused') return { result: 'invalid' };
    return { result, sid: match[1], sub };
  }

  /** Whether the session exists and belongs to `sub`. */
  async isLive(sid: string, sub: string): Promise<boolean> {
    return (await this.redis.hget(this.keys(sid).session, 'sub')) === sub;
  }

  /** The user's live sessions, newest first; index entries of expired sessions are dropped. */
  async list(sub: string): Promise<SessionInfo[]> {
    const sids = await this.redis.zrevrange(this.indexKey(sub), '0', '-1');
    const found = await Promise.all(
      sids.map(async (sid) => [sid, await this.redis.hgetall(this.keys(sid).session)] as const),
    );
    const gone = found.filter(([, h]) => h['sub'] !== sub).map(([sid]) => sid);
    if (gone.length > 0) await this.redis.zrem(this.indexKey(sub), ...gone);
    return found
      .filter(([, h]) => h['sub'] === sub)
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
    await this.redis.del(k.session, k.spent);
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
    if (sids.length > 0) await announce(sids);
    const wasLive = await Promise.all(
      sids.map(async (sid) => {
        const k = this.keys(sid);
        const ended = (await this.redis.del(k.session)) === 1;
        await this.redis.del(k.spent);
        return ended;
      }),
    );
    if (sids.length > 0) await this.redis.zrem(this.indexKey(sub), ...sids);
    return { ids: sids, live: wasLive.filter(Boolean).length };
  }

  /** Drops an index entry whose session ended by itself (a detected reuse). */
  async unindex(sub: string, sid: string): Promise<void> {
    await this.redis.zrem(this.indexKey(sub), sid);
  }
}
