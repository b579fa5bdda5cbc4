import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { ProfileSchema, problemResponses, ReferralExportSchema } from '@refstack/shared/contracts';
import { Type } from 'typebox';
import type { AccountService } from '../account/account-service.js';
import type { Caller, TokenService } from '../tokens/token-service.js';
import { SEND_CODE_PROBLEMS, SendCodeReply } from './schemas.js';
import { sendCodeInput } from './sms-locale.js';

const security = [{ bearerAuth: [] }];

const SessionSchema = Type.Object({
  id: Type.String({ description: 'The session id (also the first part of its refresh token).' }),
  created_at: Type.String({ format: 'date-time', description: 'The sign-in that started it.' }),
  last_used_at: Type.String({ format: 'date-time', description: 'Its last refresh (or its start).' }),
  device: Type.String({ description: 'From the User-Agent of the sign-in, e.g. "Chrome 120 on Android 14".' }),
  ip: Type.String({ description: 'The address of the sign-in, masked to a /24 (IPv4) or /48 (IPv6).' }),
  current: Type.Boolean({ description: 'Whether this is the session of the token making the request.' }),
});
const SessionsReply = Type.Object({ sessions: Type.Array(SessionSchema) }, { description: 'Newest first.' });
const SessionParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const LogoutAllBody = Type.Object({
  include_current: Type.Optional(
    Type.Boolean({ description: 'End the session of this request too (default: keep it).', default: false }),
  ),
});
const Code = Type.Union([Type.String({ maxLength: 16 }), Type.Integer({ minimum: 0 })], {
  description: 'The digits from the SMS.',
});
const PhoneChangeBody = Type.Object({
  phone: Type.String({ minLength: 1, maxLength: 32, description: 'The new number.' }),
  code: Type.Optional(Code),
  captcha_token: Type.Optional(Type.String({ maxLength: 32_768 })),
});
const DeleteProfileBody = Type.Object({ code: Code });
const ExportReply = Type.Object(
  {
    exported_at: Type.String({ format: 'date-time' }),
    ...ReferralExportSchema.properties,
    sessions: Type.Array(SessionSchema),
  },
  { description: 'Everything the system holds about the caller.' },
);

const CALLER = Symbol('caller');
type WithCaller = FastifyRequest & { [CALLER]?: Caller };
const callerOf = (request: FastifyRequest): Caller => {
  const caller = (request as WithCaller)[CALLER];
  if (!caller) throw new Error('route without authentication');
  return caller;
};

/** The signed-in person's sessions and account: every route here needs a live session's access token. */
export const accountRoutes: FastifyPluginAsyncTypebox<{ accounts: AccountService; tokens: TokenService }> = async (
  app,
  { accounts, tokens },
) => {
  app.addHook('onRequest', async (request) => {
    (request as WithCaller)[CALLER] = await tokens.authenticate(request.headers.authorization);
  });

  app.get(
    '/api/v1/auth/sessions',
    {
      schema: {
        tags: ['sessions'],
        security,
        summary: 'Where I am signed in',
        response: { 200: SessionsReply, ...problemResponses('unauthorized') },
      },
    },
    async (request) => accounts.list(callerOf(request)),
  );

  app.delete(
    '/api/v1/auth/sessions/:id',
    {
      schema: {
        tags: ['sessions'],
        security,
        summary: 'End one of my sessions (sign out a device)',
        description: 'Its refresh token stops at once and its access tokens within seconds, everywhere.',
        params: SessionParams,
        response: {
          204: Type.Null({ description: 'Session ended' }),
          ...problemResponses('unauthorized', 'session_not_found'),
        },
      },
    },
    async (request, reply) => {
      await accounts.endSession(callerOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/logout-all',
    {
      schema: {
        tags: ['sessions'],
        security,
        summary: 'End every other session (or all of them)',
        body: LogoutAllBody,
        response: {
          200: Type.Object({ ended: Type.Integer({ description: 'How many sessions ended.' }) }),
          ...problemResponses('validation_failed', 'unauthorized'),
        },
      },
      // Every field is optional, so a request without a body is a request for the defaults; the
      // schema alone would refuse it ("body must be object").
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => accounts.logoutAll(callerOf(request), request.body.include_current === true),
  );

  app.post(
    '/api/v1/profile/phone',
    {
      schema: {
        tags: ['profile'],
        security,
        summary: 'Move my account to another phone number',
        description:
          'Needs a sign-in with an SMS code within the last 10 minutes (`step_up_required` otherwise). ' +
          'Without `code`: a code goes to the number as send-code sends it (202, the send-code answer and ' +
          'limits, whether or not another account has the number). With `code`: the account moves there ' +
          '(200, or `phone_taken` 409 if another account has the number); its id, invite code and invite relations ' +
          'stay, every other session ends, and the previous number gets an SMS notice. After a 503 the move may ' +
          'have happened: send the same request again with the same code to finish it.',
        body: PhoneChangeBody,
        response: {
          200: Type.Object({ user: ProfileSchema }),
          202: SendCodeReply,
          ...problemResponses(
            ...SEND_CODE_PROBLEMS,
            'unauthorized',
            'step_up_required',
            'account_blocked',
            'phone_taken',
            'otp_invalid',
            'otp_expired',
            'otp_attempts_exceeded',
          ),
        },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const { phone, code } = request.body;
      if (code === undefined || code === '') {
        const sent = await accounts.requestPhoneChange(caller, sendCodeInput(request), request.id);
        return reply.code(202).send(sent);
      }
      return accounts.confirmPhoneChange(caller, phone, code, request.ip, request.id);
    },
  );

  app.delete(
    '/api/v1/profile',
    {
      schema: {
        tags: ['profile'],
        security,
        summary: 'Delete my account',
        description:
          'Confirmed with a code sent to the account’s number (`POST /api/v1/auth/send-code`) just before. ' +
          'Personal data (phone, names, email) is erased at once and every session ends; the number can ' +
          'sign up again as a new account. The invite graph keeps an anonymous entry: the inviter’s count ' +
          'stays, and the users who activated this account’s code keep their activation. After a 503 the ' +
          'deletion may have happened: send it again to finish it (204).',
        body: DeleteProfileBody,
        response: {
          204: Type.Null({ description: 'Account deleted' }),
          ...problemResponses(
            'validation_failed',
            'unauthorized',
            'account_blocked',
            'otp_invalid',
            'otp_expired',
            'otp_attempts_exceeded',
            'rate_limited',
          ),
        },
      },
    },
    async (request, reply) => {
      await accounts.deleteAccount(callerOf(request), request.body.code, request.ip, request.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/profile/export',
    {
      schema: {
        tags: ['profile'],
        security,
        summary: 'Everything the system holds about me, as one JSON document',
        response: { 200: ExportReply, ...problemResponses('unauthorized') },
      },
    },
    async (request) => accounts.exportData(callerOf(request), request.id),
  );
};
