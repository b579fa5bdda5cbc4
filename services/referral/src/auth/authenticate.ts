import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, type Config } from '@refstack/shared';
import type { JwksClient } from './jwks-client.js';

export interface AccessTokenUser {
  sub: string;
  phone: string;
  roles: string[];
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenUser;
    user: AccessTokenUser;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
}

/**
 * Verifies access tokens locally with auth's published keys (ES256 only). Verified tokens are
 * cached (bounded LRU, until they expire), so a token is checked cryptographically once.
 */
export const authenticatePlugin = fp<{ jwks: JwksClient; config: Config }>(
  async (app: FastifyInstance, { jwks, config }) => {
    await app.register(fastifyJwt, {
      secret: {
        public: async (_request: FastifyRequest, token: TokenOrHeader) => jwks.publicPem('header' in token ? token.header.kid : token.kid),
      },
      verify: { algorithms: ['ES256'], allowedIss: config.tokens.issuer, allowedAud: config.tokens.audience, cache: 10_000, requiredClaims: ['sub', 'exp'] },
      decode: { complete: true },
    });
    app.decorate('authenticate', async (request: FastifyRequest) => {
      try {
        await request.jwtVerify();
      } catch (error) {
        if (error instanceof AppError) throw error;
        throw new AppError('unauthorized', 'A valid access token is required: `Authorization: Bearer <access>`.');
      }
      if (typeof request.user?.sub !== 'string' || !/^[1-9][0-9]{0,18}$/.test(request.user.sub)) {
        throw new AppError('unauthorized', 'The access token has no valid subject.');
      }
    });
  },
  { name: 'authenticate' },
);
