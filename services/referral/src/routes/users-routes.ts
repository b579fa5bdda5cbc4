import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError, ProfileSchema, problemResponses } from '@refstack/shared/contracts';
import { Type } from 'typebox';
import type { UserService } from '../users/user-service.js';
import { PublicCardSchema, UserIdParams, UsersQuery, UsersReply } from './schemas.js';

const tags = ['users'];
const security = [{ bearerAuth: [] }];

/**
 * Other users. Admin rights are read from the database on each admin request, not from the token,
 * so revoking them takes effect at once.
 */
export const usersRoutes: FastifyPluginAsyncTypebox<{ users: UserService }> = async (app, { users }) => {
  app.addHook('onRequest', app.authenticate);

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
          ...problemResponses('unauthorized', 'not_found'),
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
        response: { 200: UsersReply, ...problemResponses('validation_failed', 'unauthorized', 'forbidden') },
      },
    },
    async (request) => {
      if (!(await users.isAdmin(request.user.sub))) throw new AppError('forbidden', 'Only admins may list users.');
      return users.listUsers({
        search: request.query.search,
        limit: request.query.limit ?? 50,
        cursor: request.query.cursor,
      });
    },
  );
};
