import { randomUUID } from 'node:crypto';
import { AppError, type InternalUser, type Tokens } from '@refstack/shared/contracts';
import type { RevocableClaims, Revocation } from '@refstack/shared/platform';
import type { AccessTokenCodec } from './jwt.js';
import type { IdentifyOutcome, SessionIdentity, SessionOrigin, SessionState, SessionStore } from './session-store.js';

export interface TokenServiceDeps {
  sessions: SessionStore;
  accessTokens: AccessTokenCodec;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  /** The user as referral has it now: a refresh re-reads roles, phone and standing. */
  user: (sub: string, requestId: string) => Promise<InternalUser>;
  /** Announces ended sessions, so that their access tokens stop working everywhere. */
  revoke: (revocations: Revocation[]) => Promise<void>;
  /** Whether a token's session or user was revoked (what every process hears over Redis). */
  isRevoked: (claims: RevocableClaims) => boolean;
}

/** The caller of a request with a bearer token, whose session is live. */
export interface Caller {
  sub: string;
  sid: string;
  phone: string;
  /** Seconds since the epoch: the session's sign-in with an SMS code. */
  authTime: number;
}

export type AccessOnly = Omit<Tokens, 'refresh'>;

export function tokenServiceFactory(deps: TokenServiceDeps) {
  const accessFor = (state: SessionState): AccessOnly => ({
    access: deps.accessTokens.sign({
      sub: state.identity.sub,
      phone: state.identity.phone,
      roles: state.identity.roles,
      jti: randomUUID(),
      sid: state.sid,
      auth_time: state.authTime,
    }),
    token_type: 'Bearer',
    expires_in: deps.accessTtlSeconds,
  });
  const pair = (state: SessionState, refresh: string): Tokens => ({ ...accessFor(state), refresh });
  const reused = () =>
    new AppError('token_reused', 'This refresh token was already used; the session has been revoked. Sign in again.');
  const invalidRefresh = () => new AppError('token_invalid', 'The refresh token is not valid.');

  /**
   * A session that reuse detection ended (the store marked it and answers every token of it as
   * reuse): its access tokens are announced revoked, and only then is it deleted, so that an
   * announcement that failed is made again by the next token presented.
   */
  async function ended(sid: string, sub: string | undefined): Promise<void> {
    await deps.revoke([{ sid }]);
    await deps.sessions.forgetReused(sid, sub);
  }
  /** Passed to the store, which announces before it deletes (see `SessionStore.end`). */
  const announce = (sids: string[]) => deps.revoke(sids.map((sid) => ({ sid })));

  /**
   * The session behind a refresh token, with the user's roles and phone read again from referral:
   * a session of a user blocked or deleted since, or begun before a block since lifted, ends here,
   * whatever its own expiry says.
   */
  async function current(
    outcome: IdentifyOutcome,
    requestId: string,
  ): Promise<{ state: SessionState; identity: SessionIdentity }> {
    if (outcome.result === 'reused') {
      await ended(outcome.sid, outcome.sub);
      throw reused();
    }
    if (outcome.result !== 'ok') throw invalidRefresh();
    const { state } = outcome;
    const user = await deps.user(state.identity.sub, requestId);
    if (user.status !== 'active' || user.phone === null) {
      await deps.sessions.end(state.identity.sub, state.sid, announce);
      if (user.status === 'blocked') throw new AppError('account_blocked', 'This account is blocked.');
      throw invalidRefresh();
    }
    // A block ends every session begun by then, also after an unblock: referral keeps its time, so
    // this holds when no auth instance heard it announced and its Redis entry has long expired.
    const revokedBefore = user.revoked_before;
    if (revokedBefore != null && state.authTime <= revokedBefore) {
      await deps.sessions.endBegunBy(state.identity.sub, revokedBefore, announce);
      throw invalidRefresh();
    }
    return { state, identity: { sub: user.id, phone: user.phone, roles: user.roles } };
  }

  return {
    async issue(identity: SessionIdentity, origin: SessionOrigin): Promise<Tokens & { sid: string }> {
      const created = await deps.sessions.create(identity, deps.refreshTtlSeconds, origin);
      return { ...pair({ identity, sid: created.sid, authTime: created.authTime }, created.refresh), sid: created.sid };
    },

    /** Rotation. The user is read before the token is spent, so a failed read leaves it usable. */
    async refresh(refresh: string, requestId: string): Promise<Tokens> {
      const { identity } = await current(await deps.sessions.identify(refresh, false), requestId);
      const outcome = await deps.sessions.rotate(refresh);
      if (outcome.result === 'limited')
        throw new AppError('rate_limited', 'This session was refreshed too often; try again later.', {
          retryAfter: Math.max(1, Math.ceil(outcome.retryAfterMs / 1000)),
        });
      if (outcome.result === 'reused') {
        await ended(outcome.sid, outcome.sub);
        throw reused();
      }
      if (outcome.result !== 'ok') throw invalidRefresh();
      return pair({ ...outcome.state, identity }, outcome.refresh);
    },

    /**
     * A new access token for the session's current refresh token, which is not rotated (the second
     * seed's clients keep one refresh token for the session's life). Reuse of a spent one is
     * detected and revokes the session, as in `refresh`.
     */
    async access(refresh: string, requestId: string): Promise<AccessOnly> {
      const { state, identity } = await current(await deps.sessions.identify(refresh), requestId);
      return accessFor({ ...state, identity });
    },

    async logout(refresh: string): Promise<void> {
      // The session is announced before it is deleted: should the announcement fail, the same
      // refresh token still ends it on a retry, and announces it then.
      const found = await deps.sessions.identify(refresh, false);
      if (found.result === 'ok') await announce([found.state.sid]);
      const outcome = found.result === 'ok' ? await deps.sessions.revoke(refresh) : found;
      if (outcome.result === 'invalid') throw invalidRefresh();
      if (outcome.result === 'reused') await ended(outcome.sid, outcome.sub);
      else if (outcome.sub !== undefined) await deps.sessions.unindex(outcome.sub, outcome.sid).catch(() => undefined);
      // A spent token revokes the session too, but the caller learns only that it was not valid.
      if (outcome.result !== 'ok') throw invalidRefresh();
    },

    /** Ends sessions of the user and announces them; returns how many ended. */
    async endSessions(sub: string, options: { only?: string; except?: string }): Promise<number> {
      if (options.only) return (await deps.sessions.end(sub, options.only, announce)) ? 1 : 0;
      return (await deps.sessions.endAll(sub, options.except, announce)).live;
    },

    /** A token whose session ended (or whose user was blocked or deleted) is no longer valid. */
    async verify(access: string): Promise<{ valid: true; sub: string; exp: number }> {
      const claims = await deps.accessTokens.verify(access).catch(() => undefined);
      if (!claims || deps.isRevoked(claims) || (claims.sid && !(await deps.sessions.isLive(claims.sid, claims.sub))))
        throw new AppError('token_invalid', 'The access token is not valid.');
      return { valid: true, sub: claims.sub, exp: claims.exp };
    },

    /** The caller behind `Authorization: Bearer`, whose session must still be live. */
    async authenticate(authorization: string | undefined): Promise<Caller> {
      const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
      const unauthorized = (detail: string) => new AppError('unauthorized', detail);
      if (!token) throw unauthorized('A valid access token is required: `Authorization: Bearer <access>`.');
      const claims = await deps.accessTokens.verify(token).catch(() => undefined);
      if (!claims) throw unauthorized('The access token is not valid.');
      // Tokens from before sessions were named in them cannot be tied to a session: sign in again.
      if (claims.sid === undefined || claims.auth_time === undefined)
        throw unauthorized('This access token names no session; refresh it or sign in again.');
      if (deps.isRevoked(claims) || !(await deps.sessions.isLive(claims.sid, claims.sub)))
        throw unauthorized('This session has ended; sign in again.');
      return { sub: claims.sub, sid: claims.sid, phone: claims.phone, authTime: claims.auth_time };
    },
  };
}

export type TokenService = ReturnType<typeof tokenServiceFactory>;
