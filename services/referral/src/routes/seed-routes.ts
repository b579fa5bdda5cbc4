import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  AppError,
  problemBody,
  problemResponses,
  PROBLEM_CONTENT_TYPE,
  type ErrorCode,
  type Profile,
} from '@refstack/shared/contracts';
import type { InviteService } from '../invites/invite-service.js';
import { cleanProfileChanges } from '../users/profile-changes.js';
import { toSeed1Profile, toSeedUserDetails } from '../users/seed-user-mapper.js';
import type { UserService } from '../users/user-service.js';
import { ActivateInviteBody, INVITE_REFUSALS } from './schemas.js';
import {
  SEED1_INVITE_ACTIVATED,
  Seed1ActivateInviteReply,
  Seed1ProfileSchema,
  SeedPatchUserBody,
  seedProblemResponses,
  SeedUserDetailsSchema,
} from './seed-schemas.js';

const security = [{ bearerAuth: [] }];

/** The second seed answers every refused invite code as a bad request. */
const SEED_INVITE_STATUSES: Partial<Record<ErrorCode, number>> = Object.fromEntries(
  INVITE_REFUSALS.map((code) => [code, 400]),
);

/**
 * A route's error handler that answers the given codes with the seed's status (in the header and
 * in the body's `status`, which RFC 9457 wants equal) and hands everything else to the app's.
 */
function withStatuses(statuses: Partial<Record<ErrorCode, number>>) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const status = error instanceof AppError ? statuses[error.code] : undefined;
    if (!(error instanceof AppError) || status === undefined) throw error;
    request.log.info({ code: error.code, status }, 'request refused');
    const body = { ...problemBody(error.code, error.message, error.extras), status };
    return reply.code(status).type(PROBLEM_CONTENT_TYPE).send(body);
  };
}

/**
 * The seeds' paths, registered only while LEGACY_PATHS is on: the second seed's users/current_user
 * on its own public path, and the first seed's profile under /compat/seed1 (internal: the gateway
 * maps the first seed's public paths there). Each answers from our services; only the shapes are
 * the seeds'.
 */
export const seedRoutes: FastifyPluginAsyncTypebox<{ users: UserService; invites: InviteService }> = async (
  app,
  { users, invites },
) => {
  app.addHook('onRequest', app.authenticate);

  const userDetails = async (userId: string) => {
    const { user, invitees } = await users.withNewestInvitees(userId);
    return toSeedUserDetails(user, invitees);
  };

  // A static path: the router prefers it to /api/v1/users/:id, whose public cards stay as they are.
  app.get(
    '/api/v1/users/current_user',
    {
      schema: {
        tags: ['users'],
        security,
        deprecated: true,
        summary: 'My user details (second seed); use GET /api/v1/profile',
        response: { 200: SeedUserDetailsSchema, ...problemResponses('unauthorized', 'account_blocked') },
      },
    },
    async (request) => userDetails(request.user.sub),
  );

  app.patch(
    '/api/v1/users/current_user',
    {
      schema: {
        tags: ['users'],
        security,
        deprecated: true,
        summary: 'Change my name or email, activate an invite code (second seed)',
        description:
          'Other keys are ignored. All or nothing: a refused invite code changes no name either. ' +
          'Use PATCH /api/v1/profile and PUT /api/v1/profile/invite.',
        body: SeedPatchUserBody,
        response: {
          200: SeedUserDetailsSchema,
          ...seedProblemResponses(
            SEED_INVITE_STATUSES,
            'validation_failed',
            ...INVITE_REFUSALS,
            'unauthorized',
            'account_blocked',
            'email_taken',
          ),
        },
      },
      errorHandler: withStatuses(SEED_INVITE_STATUSES),
    },
    async (request) => {
      // Every field is validated before anything is written (the code's form by the activation,
      // which checks it before it reads or writes).
      const changes = cleanProfileChanges(request.body);
      const code = request.body.invited_by_code ?? undefined;
      await users.updateProfileWithInvite(request.user.sub, changes, code);
      return userDetails(request.user.sub);
    },
  );

  app.get(
    '/compat/seed1/profile',
    {
      schema: {
        tags: ['profile'],
        security,
        deprecated: true,
        summary: 'My profile (first seed): GET /api/v1/profile with an integer id',
        response: { 200: Seed1ProfileSchema, ...problemResponses('unauthorized', 'account_blocked') },
      },
    },
    async (request) => toSeed1Profile(JSON.parse(await users.profileJson(request.user.sub)) as Profile),
  );

  app.put(
    '/compat/seed1/profile/set-invite',
    {
      schema: {
        tags: ['profile'],
        security,
        deprecated: true,
        summary: 'Activate an invite code (first seed): PUT /api/v1/profile/invite',
        body: ActivateInviteBody,
        response: {
          200: Seed1ActivateInviteReply,
          ...problemResponses('validation_failed', 'unauthorized', 'account_blocked', ...INVITE_REFUSALS),
        },
      },
    },
    async (request) => ({
      ...(await invites.activate(request.user.sub, request.body.invite_code)),
      status: SEED1_INVITE_ACTIVATED,
    }),
  );
};
