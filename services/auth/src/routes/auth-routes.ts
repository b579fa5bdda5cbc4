import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses, TokensSchema } from '@refstack/shared/contracts';
import { Type } from 'typebox';
import type { LoginService } from '../login-service.js';
import type { OtpService } from '../otp/otp-service.js';
import type { Keyring } from '../tokens/keyring.js';
import type { TokenService } from '../tokens/token-service.js';
import { SPENT_KEPT } from '../tokens/session-store.js';
import { sessionOrigin } from '../account/session-origin.js';
import { sendCodeInput } from './sms-locale.js';
import {
  JwksReply,
  RefreshBody,
  REFRESH_PROBLEMS,
  SEND_CODE_PROBLEMS,
  SendCodeBody,
  SendCodeReply,
  TokenVerifyBody,
  TokenVerifyReply,
  SIGN_IN_OTHER_PROBLEMS,
  SIGN_IN_REFUSALS,
  VerifyBody,
  VerifyReply,
} from './schemas.js';

export interface AuthRoutesOptions {
  otp: OtpService;
  login: LoginService;
  tokens: TokenService;
  keyring: Keyring;
}

const tags = ['auth'];
// None of these operations takes a bearer token: what they need (a phone, a code, a token) is in the body.
const security: [] = [];

export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (
  app,
  { otp, login, tokens, keyring },
) => {
  app.post(
    '/api/v1/auth/send-code',
    {
      schema: {
        tags,
        security,
        summary: 'Send a one-time login code by SMS',
        description:
          'Answers the same whether or not the phone has an account. The code arrives only by SMS, in the ' +
          'language of `Accept-Language` when it is one the system writes (en, ru), else Russian for Russian ' +
          'numbers and SMS_DEFAULT_LOCALE for others.',
        body: SendCodeBody,
        response: {
          200: SendCodeReply,
          ...problemResponses(...SEND_CODE_PROBLEMS),
        },
      },
    },
    async (request) => otp.sendCode(sendCodeInput(request)),
  );

  app.post(
    '/api/v1/auth/verify',
    {
      schema: {
        tags,
        security,
        summary: 'Sign in with the code; creates the user on first success',
        description:
          'With `invite_code`, the invite is applied in the same step; ' +
          'if it is refused, that error is returned and the code stays valid.',
        body: VerifyBody,
        response: {
          200: VerifyReply,
          ...problemResponses(...SIGN_IN_OTHER_PROBLEMS, ...SIGN_IN_REFUSALS),
        },
      },
    },
    async (request) => login.verify(request.body, request.id, request.ip, sessionOrigin(request)),
  );

  app.post(
    '/api/v1/auth/refresh',
    {
      schema: {
        tags,
        security,
        summary: 'Exchange a refresh token for new tokens (rotation)',
        description:
          'The presented refresh token is spent. Presenting a spent one revokes the whole session (`token_reused`). ' +
          `A session rotates at most ${SPENT_KEPT} times in an hour (\`rate_limited\`, with Retry-After).`,
        body: RefreshBody,
        response: {
          200: TokensSchema,
          ...problemResponses(...REFRESH_PROBLEMS, 'rate_limited'),
        },
      },
    },
    async (request) => tokens.refresh(request.body.refresh, request.id),
  );

  app.post(
    '/api/v1/auth/logout',
    {
      schema: {
        tags,
        security,
        summary: 'Revoke the session of a refresh token',
        body: RefreshBody,
        response: {
          204: Type.Null({ description: 'Session revoked' }),
          ...problemResponses('validation_failed', 'token_invalid'),
        },
      },
    },
    async (request, reply) => {
      await tokens.logout(request.body.refresh);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/token/verify',
    {
      schema: {
        tags,
        security,
        summary: 'Check an access token',
        body: TokenVerifyBody,
        response: { 200: TokenVerifyReply, ...problemResponses('validation_failed', 'token_invalid') },
      },
    },
    async (request) => tokens.verify(request.body.token),
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags,
        security,
        summary: 'Public keys that verify access tokens (JWK set)',
        response: { 200: JwksReply },
      },
    },
    async (_request, reply) => {
      // Verifiers and caches may keep this for a minute, no longer: a key removed because it leaked
      // must stop verifying within JWKS_REFRESH_SECONDS (60 by default) everywhere.
      void reply.header('cache-control', 'public, max-age=60');
      return keyring.jwks();
    },
  );
};
