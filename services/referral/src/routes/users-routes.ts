import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError, ProfileSchema, problemResponses } from '@refstack/shared/contracts';
import { Type } from 'typebox';
import type { AccountService } from '../users/account-service.js';
import type { UserService } from '../users/user-service.js';
import { PublicCardSchema, UserIdParams, UsersQuery, UsersReply } from './schemas.js';

const tags = ['users'];
const security = [{ bearerAuth: [] }];

const Blocked = Type.Null({ description: 'Done, or was already so; no body.' });

/**
 * Other users. Admin rights are read from the database on each admin request, not from the token,
 * so revoking them takes effect at once.
 */
export const usersRoutes: FastifyPluginAsyncTypebox<{ users: UserService; accounts: AccountService }> = async (
  app,
  { users, accounts },
) => {
  app.addHook('onRequest', app.authenticate);

  const requireAdmin = async (userId: string, what: string) => {
    if (!(await users.isAdmin(userId))) throw new AppError('forbidden', `Only admins may ${what}.`);
  };

  app.get(
    '/api/v1/users/:id',
    {
      schema: {
        tags,
        security,
        summary: "A user's public card; an admin gets the full profile",
        params: UserIdParams,
        response: {
          200: Type.Union([ProfileSchema, PublicCardSchema]),
          ...problemResponses('unauthorized', 'account_blocked', 'not_found'),
        },
      },
    },
    async (request) => users.userById(request.params.id, await users.isAdmin(request.user.sub)),
  );

  app.get(
    '/api/v1/users',
    {
      schema: {
        tags,
        security,
        summary: 'List and search users (admins only)',
        querystring: UsersQuery,
        response: {
          200: UsersReply,
          ...problemResponses('validation_failed', 'unauthorized', 'forbidden', 'account_blocked'),
        },
      },
    },
    async (request) => {
      await requireAdmin(request.user.sub, 'list users');
      return users.listUsers({
        search: request.query.search,
        limit: request.query.limit ?? 50,
        cursor: request.query.cursor,
      });
    },
  );

  app.post(
    '/api/v1/users/:id/block',
    {
      schema: {
        tags,
        security,
        summary: 'Block a user (admins only)',
        description:
          'The user can no longer sign in, every access token they hold stops working within seconds, and ' +
          'their invite code is answered `invite_not_found`. Blocking a blocked user again answers 204 too.',
        params: UserIdParams,
        response: {
          204: Blocked,
          ...problemResponses('unauthorized', 'forbidden', 'account_blocked', 'not_found'),
        },
      },
    },
    async (request, reply) => {
      await requireAdmin(request.user.sub, 'block users');
      await accounts.block(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/api/v1/users/:id/block',
    {
      schema: {
        tags,
        security,
        summary: 'Unblock a user (admins only)',
        description:
          'New sign-ins work again; access tokens from before the block stay refused. Unblocking a user who is ' +
          'not blocked answers 204 too.',
        params: UserIdParams,
        response: {
          204: Blocked,
          ...problemResponses('unauthorized', 'forbidden', 'account_blocked', 'not_found'),
        },
      },
    },
    async (request, reply) => {
      await requireAdmin(request.user.sub, 'unblock users');
      await accounts.unblock(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
