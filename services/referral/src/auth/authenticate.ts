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
/** A verified token: what it says, when it expires, and which key signed it. */
type Remembered = { user: AccessTokenUser; exp: number; kid: string };

const TOKEN = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;
const unauthorized = () => new AppError('unauthorized', 'A valid access token is required: `Authorization: Bearer <access>`.');

/** How many verified tokens are remembered; the least recently used go first. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Verifies access tokens locally with auth's published keys: ES256 only, issuer and audience
 * checked, one verifier per key id. Verified tokens are remembered whole (the key is the entire
 * token, so no other token can hit an entry) until they expire, in a bounded LRU: a token is
 * checked cryptographically once, and a repeat costs one map lookup. When auth stops publishing a
 * key, its verifier and every remembered token it signed are dropped with it.
 */
export const authenticatePlugin = fp<{ jwks: JwksClient; config: Config }>(
  async (app: FastifyInstance, { jwks, config }) => {
    const verifiers = new Map<string, Verify>();
    const verifierFor = async (kid: unknown): Promise<Verify> => {
      // Published still: a verifier made while its key was being retired is not used.
      const known = typeof kid === 'string' && jwks.isPublished(kid) ? verifiers.get(kid) : undefined;
      if (known) return known;
      const key = await jwks.publicPem(kid);
      const verify = createVerifier({
        key,
        algorithms: ['ES256'],
        allowedIss: config.tokens.issuer,
        allowedAud: config.tokens.audience,
        // allowedIss and allowedAud only check a claim that is present: without these names here a
        // token minted with no issuer or no audience at all would pass.
        requiredClaims: ['sub', 'exp', 'iss', 'aud'],
      }) as unknown as Verify;
      verifiers.set(kid as string, verify);
      return verify;
    };

    const verified = new LRUCache<string, Remembered>({ max: VERIFIED_TOKEN_CACHE_SIZE });
    jwks.onRetired((kids) => {
      for (const kid of kids) verifiers.delete(kid);
      const signedByRetired = [...verified.entries()].filter(([, entry]) => kids.has(entry.kid)).map(([token]) => token);
      for (const token of signedByRetired) verified.delete(token);
    });

    app.decorateRequest('user', null as unknown as AccessTokenUser);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = TOKEN.exec(request.headers.authorization ?? '')?.[1];
      if (!token) throw unauthorized();
      const known = verified.get(token);
      // Published still: a token whose first check ended just as its key was retired.
      if (known && known.exp * 1000 > Date.now() && jwks.isPublished(known.kid)) {
        request.user = known.user;
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
      verified.set(token, { user, exp: (user as AccessTokenUser & { exp: number }).exp, kid: kid as string });
      request.user = user;
    });
  },
  { name: 'authenticate' },
);
