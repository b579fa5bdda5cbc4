import { randomUUID } from 'node:crypto';
import { AppError, type Tokens } from '@refstack/shared/contracts';
import type { AccessTokenCodec } from './jwt.js';
import type { SessionIdentity, SessionStore } from './session-store.js';

export interface TokenServiceDeps {
  sessions: SessionStore;
  accessTokens: AccessTokenCodec;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
}

export type AccessOnly = Omit<Tokens, 'refresh'>;

export function tokenServiceFactory(deps: TokenServiceDeps) {
  const accessFor = (identity: SessionIdentity): AccessOnly => ({
    access: deps.accessTokens.sign({
      sub: identity.sub,
      phone: identity.phone,
      roles: identity.roles,
      jti: randomUUID(),
    }),
    token_type: 'Bearer',
    expires_in: deps.accessTtlSeconds,
  });
  const pair = (identity: SessionIdentity, refresh: string): Tokens => {
    const { access, token_type, expires_in } = accessFor(identity);
    return { access, refresh, token_type, expires_in };
  };
  const reused = () =>
    new AppError('token_reused', 'This refresh token was already used; the session has been revoked. Sign in again.');
  const invalidRefresh = () => new AppError('token_invalid', 'The refresh token is not valid.');

  return {
    async issue(identity: SessionIdentity): Promise<Tokens> {
      return pair(identity, await deps.sessions.create(identity, deps.refreshTtlSeconds));
    },

    async refresh(refresh: string): Promise<Tokens> {
      const outcome = await deps.sessions.rotate(refresh);
      if (outcome.result === 'reused') throw reused();
      if (outcome.result !== 'ok') throw invalidRefresh();
      return pair(outcome.identity, outcome.refresh);
    },

    /**
     * A new access token for the session's current refresh token, which is not rotated (the second
     * seed's clients keep one refresh token for the session's life). Reuse of a spent one is
     * detected and revokes the session, as in `refresh`.
     */
    async access(refresh: string): Promise<AccessOnly> {
      const outcome = await deps.sessions.identify(refresh);
      if (outcome.result === 'reused') throw reused();
      if (outcome.result !== 'ok') throw invalidRefresh();
      return accessFor(outcome.identity);
    },

    async logout(refresh: string): Promise<void> {
      // A spent token revokes the session here too, but the caller learns only that it was not valid.
      if ((await deps.sessions.revoke(refresh)) !== 'ok') throw invalidRefresh();
    },

    async verify(access: string): Promise<{ valid: true; sub: string; exp: number }> {
      try {
        const claims = await deps.accessTokens.verify(access);
        return { valid: true, sub: claims.sub, exp: claims.exp };
      } catch {
        throw new AppError('token_invalid', 'The access token is not valid.');
      }
    },
  };
}

export type TokenService = ReturnType<typeof tokenServiceFactory>;
