import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  AppError,
  INTERNAL_TOKEN_HEADER,
  requirePhone,
  SIGN_IN_PATH,
  SignInBody,
  SignInResultSchema,
  problemResponses,
  type Config,
} from '@refstack/shared/contracts';
import type { UserService } from '../users/user-service.js';
import { INVITE_REFUSALS } from './schemas.js';

function sameSecret(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Service-to-service routes; the gateway never forwards /internal. */
export const internalRoutes: FastifyPluginAsyncTypebox<{ users: UserService; config: Config }> = async (
  app,
  { users, config },
) => {
  app.addHook('onRequest', async (request) => {
    if (!sameSecret(request.headers[INTERNAL_TOKEN_HEADER], config.internalToken)) {
      throw new AppError('unauthorized', 'A valid service credential is required.');
    }
  });

  app.post(
    SIGN_IN_PATH,
    {
      schema: {
        body: SignInBody,
        response: {
          200: SignInResultSchema,
          ...problemResponses('validation_failed', 'invalid_phone', 'unauthorized', ...INVITE_REFUSALS),
        },
      },
    },
    async (request) => users.signIn(requirePhone(request.body.phone, config.phone), request.body.invite_code),
  );
};
