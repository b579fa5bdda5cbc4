import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  AppError,
  ChangePhoneBody,
  ChangePhoneResultSchema,
  DeleteResultSchema,
  INTERNAL_DELETE_PATH,
  INTERNAL_EXPORT_PATH,
  INTERNAL_PHONE_PATH,
  INTERNAL_TOKEN_HEADER,
  INTERNAL_USER_PATH,
  InternalUserSchema,
  ReferralExportSchema,
  requirePhone,
  SIGN_IN_PATH,
  SignInBody,
  SignInResultSchema,
  problemResponses,
  type Config,
} from '@refstack/shared/contracts';
import type { AccountService } from '../users/account-service.js';
import type { UserService } from '../users/user-service.js';
import { INVITE_REFUSALS, UserIdParams } from './schemas.js';

function sameSecret(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Service-to-service routes; the gateway never forwards /internal. */
export const internalRoutes: FastifyPluginAsyncTypebox<{
  users: UserService;
  accounts: AccountService;
  config: Config;
}> = async (app, { users, accounts, config }) => {
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
          ...problemResponses(
            'validation_failed',
            'invalid_phone',
            'unauthorized',
            'account_blocked',
            ...INVITE_REFUSALS,
          ),
        },
      },
    },
    async (request) => users.signIn(requirePhone(request.body.phone, config.phone), request.body.invite_code),
  );

  app.get(
    INTERNAL_USER_PATH,
    {
      schema: {
        params: UserIdParams,
        response: { 200: InternalUserSchema, ...problemResponses('unauthorized', 'not_found') },
      },
    },
    async (request) => accounts.internalUser(request.params.id),
  );

  app.post(
    INTERNAL_PHONE_PATH,
    {
      schema: {
        params: UserIdParams,
        body: ChangePhoneBody,
        response: {
          200: ChangePhoneResultSchema,
          ...problemResponses(
            'validation_failed',
            'invalid_phone',
            'unauthorized',
            'account_blocked',
            'not_found',
            'phone_taken',
          ),
        },
      },
    },
    async (request) => accounts.changePhone(request.params.id, requirePhone(request.body.phone, config.phone)),
  );

  app.post(
    INTERNAL_DELETE_PATH,
    {
      schema: {
        params: UserIdParams,
        response: { 200: DeleteResultSchema, ...problemResponses('unauthorized', 'account_blocked', 'not_found') },
      },
    },
    async (request) => accounts.deleteAccount(request.params.id),
  );

  app.get(
    INTERNAL_EXPORT_PATH,
    {
      schema: {
        params: UserIdParams,
        response: { 200: ReferralExportSchema, ...problemResponses('unauthorized', 'not_found') },
      },
    },
    async (request) => accounts.exportAccount(request.params.id),
  );
};
