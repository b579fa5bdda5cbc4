import { createVerifier } from 'fast-jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, type Config } from '@refstack/shared';
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
const USER_ID = /^[1-9][0-9]{0,18}$/;
const unauthorized = () => new AppError('unauthorized', 'A valid access token is required: `Authorization: Bearer <access>`.');

/**
 * Verifies access tokens locally with auth's published keys: ES256 only, issuer and audience
 * checked. One verifier per key id, each with a bounded cache of verified tokens (kept until the
 * token expires), so a token is checked cryptographically once, not on every request.
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
        cache: 10_000,
      }) as unknown as Verify;
      verifiers.set(kid as string, verify);
      return verify;
    };

    app.decorateRequest('user', null as unknown as AccessTokenUser);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = TOKEN.exec(request.headers.authorization ?? '')?.[1];
      if (!token) throw unauthorized();
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
      if (typeof user.sub !== 'string' || !USER_ID.test(user.sub)) throw new AppError('unauthorized', 'The access token has no valid subject.');
      request.user = user;
    });
  },
  { name: 'authenticate' },
);
