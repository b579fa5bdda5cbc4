import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

/**
 * Refresh sessions. A refresh token is `<session id>.<256 random bits>`; only its SHA-256 is kept.
 * Each session (a rotation family) is one hash plus a set of spent token hashes, under one hash tag
 * (the session id). The session's absolute expiry is set once at creation; rotation never extends it.
 */

const CREATE = `
redis.call('HSET', KEYS[1], 'current', ARGV[1], 'sub', ARGV[2], 'phone', ARGV[3], 'roles', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

// Presenting the current token rotates it; presenting a spent one revokes the whole family.
const ROTATE = `
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'phone', 'roles')
local current = session[1]
if not current then return {'invalid'} end
if current == ARGV[1] then
  redis.call('SADD', KEYS[2], current)
  redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1))
  redis.call('HSET', KEYS[1], 'current', ARGV[2])
  return {'ok', session[2], session[3], session[4]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused'}
end
return {'invalid'}
`;

// For clients that keep one refresh token for the session's whole life: the current token is
// answered without rotating it; a spent one is reuse exactly as in ROTATE and revokes the family.
// It writes nothing on success, so the session's absolute expiry stays where CREATE set it.
const IDENTIFY = `
local session = redis.call('HMGET', KEYS[1], 'current', 'sub', 'phone', 'roles')
local current = session[1]
if not current then return {'invalid'} end
if current == ARGV[1] then
  return {'ok', session[2], session[3], session[4]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'reused'}
end
return {'invalid'}
`;

const REVOKE = `
local current = redis.call('HGET', KEYS[1], 'current')
if not current then return 'invalid' end
if current == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 'ok'
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 'reused'
end
return 'invalid'
`;

interface SessionCommands {
  sessionCreate(
    sessionKey: string,
    current: string,
    sub: string,
    phone: string,
    roles: string,
    ttlMs: number,
  ): Promise<number>;
  sessionRotate(sessionKey: string, spentKey: string, presented: string, next: string): Promise<string[]>;
  sessionIdentify(sessionKey: string, spentKey: string, presented: string): Promise<string[]>;
  sessionRevoke(sessionKey: string, spentKey: string, presented: string): Promise<string>;
}

export interface SessionIdentity {
  sub: string;
  phone: string;
  roles: string[];
}

export type RotateOutcome =
  { result: 'ok'; identity: SessionIdentity; refresh: string } | { result: 'invalid' | 'reused' };

export type IdentifyOutcome = { result: 'ok'; identity: SessionIdentity } | { result: 'invalid' | 'reused' };

const TOKEN_FORMAT = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export class SessionStore {
  private readonly redis: Redis & SessionCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    const commands = [
      ['sessionCreate', 1, CREATE],
      ['sessionRotate', 2, ROTATE],
      ['sessionIdentify', 2, IDENTIFY],
      ['sessionRevoke', 2, REVOKE],
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

  private static newToken(sessionId: string): string {
    return `${sessionId}.${randomBytes(32).toString('base64url')}`;
  }

  /** Starts a session and returns its first refresh token. */
  async create(identity: SessionIdentity, ttlSeconds: number): Promise<string> {
    const sessionId = randomBytes(16).toString('base64url');
    const token = SessionStore.newToken(sessionId);
    await this.redis.sessionCreate(
      this.keys(sessionId).session,
      hashToken(token),
      identity.sub,
      identity.phone,
      JSON.stringify(identity.roles),
      ttlSeconds * 1000,
    );
    return token;
  }

  async rotate(presented: string): Promise<RotateOutcome> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const sessionId = match[1];
    const next = SessionStore.newToken(sessionId);
    const k = this.keys(sessionId);
    const [result, sub, phone, roles] = await this.redis.sessionRotate(
      k.session,
      k.spent,
      hashToken(presented),
      hashToken(next),
    );
    if (result !== 'ok' || sub === undefined || phone === undefined)
      return { result: result === 'reused' ? 'reused' : 'invalid' };
    return { result: 'ok', identity: { sub, phone, roles: JSON.parse(roles ?? '[]') as string[] }, refresh: next };
  }

  /**
   * The identity behind the session's current refresh token, which stays current (no rotation).
   * A spent token is reuse and revokes the session, as in `rotate`.
   */
  async identify(presented: string): Promise<IdentifyOutcome> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return { result: 'invalid' };
    const k = this.keys(match[1]);
    const [result, sub, phone, roles] = await this.redis.sessionIdentify(k.session, k.spent, hashToken(presented));
    if (result !== 'ok' || sub === undefined || phone === undefined)
      return { result: result === 'reused' ? 'reused' : 'invalid' };
    return { result: 'ok', identity: { sub, phone, roles: JSON.parse(roles ?? '[]') as string[] } };
  }

  async revoke(presented: string): Promise<'ok' | 'invalid' | 'reused'> {
    const match = TOKEN_FORMAT.exec(presented);
    if (!match?.[1]) return 'invalid';
    const k = this.keys(match[1]);
    return (await this.redis.sessionRevoke(k.session, k.spent, hashToken(presented))) as 'ok' | 'invalid' | 'reused';
  }
}
