import { Type } from 'typebox';
import { InviteCodeInput, PhoneInput, ProfileSchema, TokensSchema, type ErrorCode } from '@refstack/shared/contracts';

/** The bot challenge's token, on every path that can send an SMS (CAPTCHA_MODE). */
export const CaptchaTokenInput = Type.String({
  // hCaptcha tokens of over 4,000 characters are seen; the body limit (64 KiB) still holds.
  maxLength: 32_768,
  description:
    'The token the bot challenge (CAPTCHA_PROVIDER) gave the client; ' +
    'required when the server answers captcha_required.',
});

export const SendCodeBody = Type.Object({ phone: PhoneInput, captcha_token: Type.Optional(CaptchaTokenInput) });

export const SendCodeReply = Type.Object(
  {
    message: Type.String({ examples: ['Code sent'] }),
    phone: Type.String({ description: 'The phone in E.164.', examples: ['+79123456789'] }),
    expires_in: Type.Integer({ description: 'Seconds the code stays valid.', examples: [300] }),
    resend_in: Type.Integer({ description: 'Seconds before another code may be requested.', examples: [60] }),
  },
  { description: 'The code is on its way by SMS.' },
);

export const VerifyBody = Type.Object({
  phone: PhoneInput,
  code: Type.Union([Type.String({ maxLength: 16 }), Type.Integer({ minimum: 0 })], {
    description: 'The digits from the SMS; a JSON number is accepted and left-padded with zeros.',
    examples: ['123456'],
  }),
  invite_code: Type.Optional(Type.Union([InviteCodeInput, Type.Null()])),
});

export const VerifyReply = Type.Object(
  {
    user: ProfileSchema,
    tokens: TokensSchema,
    created: Type.Boolean({ description: 'True when this sign-in created the user.' }),
  },
  { description: 'Signed in: the profile and a new session.' },
);

export const RefreshBody = Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 256 }) });

export const TokenVerifyBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) });
export const TokenVerifyReply = Type.Object(
  {
    valid: Type.Literal(true),
    sub: Type.String(),
    exp: Type.Integer({ description: 'Expiry, seconds since the epoch.' }),
  },
  { description: 'The token is valid.' },
);

export const JwksReply = Type.Object(
  {
    keys: Type.Array(
      Type.Object({
        kty: Type.String(),
        crv: Type.String(),
        x: Type.String(),
        y: Type.String(),
        kid: Type.String(),
        alg: Type.String(),
        use: Type.String(),
      }),
    ),
  },
  { description: 'The public keys that verify access tokens.' },
);

/** The problems each login step can answer, for its route and for the seeds' paths onto it. */
export const SEND_CODE_PROBLEMS = [
  'validation_failed',
  'invalid_phone',
  'captcha_required',
  'captcha_invalid',
  'destination_refused',
  'resend_too_soon',
  'rate_limited',
  'prefix_blocked',
  'service_unavailable',
  'budget_exhausted',
] as const satisfies readonly ErrorCode[];

/** Refusals of a sign-in: of the code or of the invite it carries. */
export const SIGN_IN_REFUSALS = [
  'otp_invalid',
  'otp_expired',
  'invite_not_found',
  'invite_already_activated',
  'invite_self',
  'invite_cycle',
] as const satisfies readonly ErrorCode[];

/** What else a sign-in can answer: bad input, limits, an unavailable referral service. */
/** A refresh re-reads the user at referral: blocked (403), or referral away (503). */
export const REFRESH_PROBLEMS = [
  'validation_failed',
  'token_invalid',
  'token_reused',
  'account_blocked',
  'service_unavailable',
] as const satisfies readonly ErrorCode[];

export const SIGN_IN_OTHER_PROBLEMS = [
  'validation_failed',
  'invalid_phone',
  'otp_attempts_exceeded',
  'rate_limited',
  'account_blocked',
  'service_unavailable',
] as const satisfies readonly ErrorCode[];
