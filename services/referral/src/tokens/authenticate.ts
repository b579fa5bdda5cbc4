import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '@refstack/shared/contracts';
import type { AccessTokenUser, AccessTokenVerifier } from './access-token-verifier.js';

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
  interface FastifyRequest {
    user: AccessTokenUser;
  }
}

const TOKEN = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/** The routes' hook: the caller of a request is whoever its bearer token says, checked locally. */
export const authenticatePlugin = fp<{ verifier: AccessTokenVerifier }>(
  async (app: FastifyInstance, { verifier }) => {
    app.decorateRequest('user', null as unknown as AccessTokenUser);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = TOKEN.exec(request.headers.authorization ?? '')?.[1];
      if (!token)
        throw new AppError('unauthorized', 'A valid access token is required: `Authorization: Bearer <access>`.');
      request.user = await verifier.verify(token);
    });
  },
  { name: 'authenticate' },
);
