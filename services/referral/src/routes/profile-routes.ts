import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProfileSchema, problemResponses, type Profile } from '@refstack/shared/contracts';
import type { InviteService } from '../invites/invite-service.js';
import { cleanProfileChanges } from '../users/profile-changes.js';
import type { UserService } from '../users/user-service.js';
import {
  ActivateInviteBody,
  ActivateInviteReply,
  INVITE_REFUSALS,
  InvitedQuery,
  InvitedReply,
  PatchProfileBody,
} from './schemas.js';

const tags = ['profile'];
const security = [{ bearerAuth: [] }];

/** The signed-in user's own profile; every route here needs a valid access token. */
export const profileRoutes: FastifyPluginAsyncTypebox<{ users: UserService; invites: InviteService }> = async (
  app,
  { users, invites },
) => {
  app.addHook('onRequest', app.authenticate);

  app.get(
    '/api/v1/profile',
    {
      schema: {
        tags,
        security,
        summary: 'My profile, with the users who activated my invite code',
        response: { 200: ProfileSchema, ...problemResponses('unauthorized', 'account_blocked') },
      },
    },
    async (request, reply) => {
      // PostgreSQL renders the document in the schema's exact shape (see readProfileJsons), so it is
      // sent as it arrives instead of being parsed and serialised again.
      const document = await users.profileJson(request.user.sub);
      // The type provider expects the object; a string is the same document already serialised.
      return reply.type('application/json; charset=utf-8').send(document as unknown as Profile);
    },
  );

  app.patch(
    '/api/v1/profile',
    {
      schema: {
        tags,
        security,
        summary: 'Change my name or email',
        body: PatchProfileBody,
        response: {
          200: ProfileSchema,
          ...problemResponses('validation_failed', 'unauthorized', 'account_blocked', 'email_taken'),
        },
      },
    },
    async (request) => users.updateProfile(request.user.sub, cleanProfileChanges(request.body)),
  );

  app.put(
    '/api/v1/profile/invite',
    {
      schema: {
        tags,
        security,
        summary: "Activate someone's invite code (once)",
        description: 'Trimmed and case-insensitive. Repeating the same activation answers 200 again.',
        body: ActivateInviteBody,
        response: {
          200: ActivateInviteReply,
          ...problemResponses('validation_failed', 'unauthorized', 'account_blocked', ...INVITE_REFUSALS),
        },
      },
    },
    async (request) => invites.activate(request.user.sub, request.body.invite_code),
  );

  app.get(
    '/api/v1/profile/invited',
    {
      schema: {
        tags,
        security,
        summary: 'Everyone who activated my code, newest first (keyset pages)',
        querystring: InvitedQuery,
        response: {
          200: InvitedReply,
          ...problemResponses('validation_failed', 'unauthorized', 'account_blocked'),
        },
      },
    },
    async (request) => invites.invitees(request.user.sub, request.query.limit ?? 50, request.query.cursor),
  );
};
