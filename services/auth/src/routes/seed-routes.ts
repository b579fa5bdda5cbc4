import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sessionOrigin } from '../account/session-origin.js';
import {
  AppError,
  ERROR_CATALOG,
  problemBody,
  problemResponses,
  ProblemSchema,
  PROBLEM_CONTENT_TYPE,
  type ErrorCode,
  type ProblemResponse,
  type Profile,
} from '@refstack/shared/contracts';
import type { LoginService } from '../login-service.js';
import type { OtpService } from '../otp/otp-service.js';
import { sendCodeInput } from './sms-locale.js';
import type { TokenService } from '../tokens/token-service.js';
import {
  REFRESH_PROBLEMS,
  SEND_CODE_PROBLEMS,
  SendCodeBody,
  SIGN_IN_OTHER_PROBLEMS,
  SIGN_IN_REFUSALS,
  VerifyBody,
} from './schemas.js';
import {
  Seed1SendCodeReply,
  Seed1VerifyReply,
  SeedGetByPhoneBody,
  SeedGetByPhoneReply,
  SeedRefreshBody,
  SeedRefreshReply,
  SeedSendCodeBody,
  SeedSendCodeReply,
  SeedTokenVerifyBody,
  SeedTokenVerifyReply,
  type Seed1Profile,
} from './seed-schemas.js';

export interface SeedRoutesOptions {
  otp: OtpService;
  login: LoginService;
  tokens: TokenService;
}

/** The HTTP status the second seed's clients expect for a sign-in error; `code` stays ours. */
export function seedSignInStatus(code: ErrorCode): number {
  return (SIGN_IN_REFUSALS as readonly ErrorCode[]).includes(code) ? 403 : ERROR_CATALOG[code].status;
}

/** Answers a sign-in error with the seed's status; any other error goes to the app's handler. */
async function refuseLikeSeed(request: FastifyRequest, reply: FastifyReply, error: unknown): Promise<FastifyReply> {
  if (!(error instanceof AppError)) throw error;
  const status = seedSignInStatus(error.code);
  if (status === error.status) throw error;
  request.log.info({ code: error.code, status }, 'request refused');
  // The body's status is the one on the wire (RFC 9457), so a client reading either agrees.
  const body = { ...problemBody(error.code, error.message, error.extras), status };
  if (body.retry_after !== undefined) void reply.header('retry-after', String(body.retry_after));
  return reply.code(status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** The OpenAPI entry for errors answered with another status than the catalog's. */
function problemsAt(status: number, codes: readonly [ErrorCode, ...ErrorCode[]]): Record<number, ProblemResponse> {
  const example = { ...problemBody(codes[0], ERROR_CATALOG[codes[0]].title), status };
  return {
    [status]: {
      description: `Problem details; \`code\` is one of ${codes.map((c) => `\`${c}\``).join(', ')}.`,
      content: { 'application/problem+json': { schema: ProblemSchema, example } },
    },
  };
}

/** Ids are bigint strings inside; the first seed's clients read them as JSON integers. */
function integerId(id: string): number {
  const value = Number(id);
  // Past 2^53 a JSON number would silently name another user: refuse rather than round.
  if (!/^[0-9]+$/.test(id) || !Number.isSafeInteger(value)) throw new Error(`user id ${id} is not a safe integer`);
  return value;
}

const withIntegerId = (user: Profile): Seed1Profile => ({ ...user, id: integerId(user.id) });

const tags = ['legacy'];
const security: [] = [];

/**
 * The seeds' clients on their own paths (served only with LEGACY_PATHS=on): the second seed's
 * under /api/v1/auth/, and the first seed's under /compat/seed1/ for the gateway to map onto.
 * They run on the same services as the v1 routes; only the shapes and statuses differ.
 */
export const seedRoutes: FastifyPluginAsyncTypebox<SeedRoutesOptions> = async (app, { otp, login, tokens }) => {
  app.post(
    '/api/v1/auth/send_code/',
    {
      schema: {
        tags,
        security,
        deprecated: true,
        summary: "Send a login code by SMS (second seed's path)",
        description:
          'As `POST /api/v1/auth/send-code`, with its limits. The second seed answered the code itself; ' +
          'this path never does: the code arrives only by SMS.',
        body: SeedSendCodeBody,
        response: {
          200: SeedSendCodeReply,
          ...problemResponses(...SEND_CODE_PROBLEMS),
        },
      },
    },
    async (request) => otp.sendCode(sendCodeInput(request)),
  );

  app.post(
    '/api/v1/auth/jwt/get_by_phone/',
    {
      schema: {
        tags,
        security,
        deprecated: true,
        summary: "Sign in with the code (second seed's path)",
        description:
          'As `POST /api/v1/auth/verify` with `invite_code` := `invited_by_code`. A refused sign-in ' +
          '(wrong, expired or missing code, refused invite) answers 403, its `code` saying why.',
        body: SeedGetByPhoneBody,
        response: {
          200: SeedGetByPhoneReply,
          ...problemResponses(...SIGN_IN_OTHER_PROBLEMS),
          // The second seed answered every refused sign-in 403, whatever the reason.
          ...problemsAt(403, SIGN_IN_REFUSALS),
        },
      },
    },
    async (request, reply) => {
      const { phone, code, invited_by_code } = request.body;
      try {
        const signedIn = await login.verify(
          { phone, code, invite_code: invited_by_code },
          request.id,
          request.ip,
          sessionOrigin(request),
        );
        return { access: signedIn.tokens.access, refresh: signedIn.tokens.refresh, ...signedIn };
      } catch (error) {
        return refuseLikeSeed(request, reply, error);
      }
    },
  );

  app.post(
    '/api/v1/auth/jwt/refresh/',
    {
      schema: {
        tags,
        security,
        deprecated: true,
        summary: "A new access token for a refresh token, without rotating it (second seed's path)",
        description:
          'The refresh token stays valid for the whole session, until logout or its absolute lifetime. ' +
          'A token already spent by `POST /api/v1/auth/refresh` is reuse: the session is revoked (`token_reused`).',
        body: SeedRefreshBody,
        response: {
          200: SeedRefreshReply,
          ...problemResponses(...REFRESH_PROBLEMS),
        },
      },
    },
    async (request) => tokens.access(request.body.refresh, request.id),
  );

  app.post(
    '/api/v1/auth/jwt/verify/',
    {
      schema: {
        tags,
        security,
        deprecated: true,
        summary: "Check an access token (second seed's path)",
        description: 'As `POST /api/v1/auth/token/verify`, answering `{}` for a valid token.',
        body: SeedTokenVerifyBody,
        response: { 200: SeedTokenVerifyReply, ...problemResponses('validation_failed', 'token_invalid') },
      },
    },
    async (request) => {
      await tokens.verify(request.body.token);
      return {};
    },
  );

  app.post(
    '/compat/seed1/auth/send-code',
    {
      schema: {
        tags,
        security,
        deprecated: true,
        summary: "Send a login code by SMS (first seed's answer)",
        description:
          'As `POST /api/v1/auth/send-code`; the message names the phone, in Russian, as the first seed did.',
        body: SendCodeBody,
        response: {
          200: Seed1SendCodeReply,
          ...problemResponses(...SEND_CODE_PROBLEMS),
        },
      },
    },
    async (request) => {
      const sent = await otp.sendCode(sendCodeInput(request));
      return { ...sent, message: `Код отправлен по номеру: ${sent.phone}` };
    },
  );

  app.post(
    '/compat/seed1/auth/verify',
    {
      schema: {
        tags,
        security,
        deprecated: true,
        summary: "Sign in with the code (first seed's answer)",
        description: 'As `POST /api/v1/auth/verify`, with the user id as a JSON integer.',
        body: VerifyBody,
        response: {
          200: Seed1VerifyReply,
          ...problemResponses(...SIGN_IN_OTHER_PROBLEMS, ...SIGN_IN_REFUSALS),
        },
      },
    },
    async (request) => {
      const signedIn = await login.verify(request.body, request.id, request.ip, sessionOrigin(request));
      return { ...signedIn, user: withIntegerId(signedIn.user) };
    },
  );
};
