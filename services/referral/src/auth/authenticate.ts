import { createVerifier } from 'fast-jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { LRUCache } from 'lru-cache';
import { AppError, type Config } from '@refstack/shared';
import { isBigintId } from '../users/cursor.js';
import type { JwksClient } from './jwks-client.js';

export interface AccessTokenUser {
  sub: string;
  phone: string;
  roles: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
  interface FastifyRequest {
    user: AccessTokenUser;
  }
}

type Verify = (token: string) => AccessTokenUser;

const TOKEN = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;
const unauthorized = () => new AppError('unauthorized', 'A valid access token is required: `Authorization: Bearer <access>`.');

/** How many verified tokens are remembered; the least recently used go first. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Verifies access tokens locally with auth's published keys: ES256 only, issuer and audience
 * checked, one verifier per key id. Verified tokens are remembered whole (the key is the entire
 * token, so no other token can hit an entry) until they expire, in a bounded LRU: a token is
 * checked cryptographically once, and a repeat costs one map lookup.
 */
export const authenticatePlugin = fp<{ jwks: JwksClient; config: Config }>(
  async (app: FastifyInstance, { jwks, config }) => {
    const verifiers = new Map<string, Verify>();
    const verifierFor = async (kid: unknown): Promise<Verify> => {
      const known = typeof kid === 'string' ? verifiers.get(kid) : undefined;
      if (known) return known;
      const key = await jwks.publicPem(kid);
      const verify = createVerifier({
        key,
        algorithms: ['ES256'],
        allowedIss: config.tokens.issuer,
        allowedAud: config.tokens.audience,
        requiredClaims: ['sub', 'exp'],
      }) as unknown as Verify;
      verifiers.set(kid as string, verify);
      return verify;
    };

    const verified = new LRUCache<string, AccessTokenUser & { exp: number }>({ max: VERIFIED_TOKEN_CACHE_SIZE });

    app.decorateRequest('user', null as unknown as AccessTokenUser);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = TOKEN.exec(request.headers.authorization ?? '')?.[1];
      if (!token) throw unauthorized();
      const known = verified.get(token);
      if (known && known.exp * 1000 > Date.now()) {
        request.user = known;
        return;
      }
      let kid: unknown;
      try {
        kid = (JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as { kid?: unknown }).kid;
      } catch {
        throw unauthorized();
      }
      const verify = await verifierFor(kid);
      let user: AccessTokenUser;
      try {
        user = verify(token);
      } catch {
        throw unauthorized();
      }
      if (typeof user.sub !== 'string' || !isBigintId(user.sub)) throw new AppError('unauthorized', 'The access token has no valid subject.');
      verified.set(token, user as AccessTokenUser & { exp: number });
      request.user = user;
    });
  },
  { name: 'authenticate' },
);
