import { Type, type Static } from 'typebox';
import { PhoneInput, ProfileSchema, TokensSchema } from '@refstack/shared/contracts';
import { CaptchaTokenInput, SendCodeReply, VerifyReply } from './schemas.js';

// The second seed ("referral-api", Django REST + simplejwt): its bodies, and our answers to them,
// which are supersets of what it answered.

export const SeedSendCodeBody = Type.Object({ phone: PhoneInput, captcha_token: Type.Optional(CaptchaTokenInput) });

export const SeedSendCodeReply = Type.Object(SendCodeReply.properties, {
  description: 'The code is on its way by SMS. Unlike the second seed, the code itself is never in the answer.',
});

export const SeedGetByPhoneBody = Type.Object({
  phone: PhoneInput,
  code: Type.Union([Type.String({ maxLength: 16 }), Type.Integer({ minimum: 0 })], {
    description:
      'The digits from the SMS. The seed sent a JSON integer, which loses leading zeros: ' +
      'an integer is left-padded with zeros to the code length.',
    examples: [4821, '004821'],
  }),
  // The seed's clients send an empty string or null for "no invite".
  invited_by_code: Type.Optional(
    Type.Union([Type.String({ maxLength: 64 }), Type.Null()], {
      description: 'An invite code to activate; null or empty for none.',
      examples: ['AB12CD'],
    }),
  ),
});

export const SeedGetByPhoneReply = Type.Object(
  {
    access: Type.String({ description: 'ES256 JWT (the seed\'s "access").' }),
    refresh: Type.String({ description: 'Opaque; on the seed paths it is not rotated by `jwt/refresh/`.' }),
    ...VerifyReply.properties,
  },
  { description: 'Signed in: the seed\'s `{"access", "refresh"}`, plus the profile and the session.' },
);

export const SeedRefreshBody = Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 256 }) });

export const SeedRefreshReply = Type.Object(
  {
    access: TokensSchema.properties.access,
    token_type: TokensSchema.properties.token_type,
    expires_in: TokensSchema.properties.expires_in,
  },
  { description: 'A new access token; the refresh token stays the same.' },
);

export const SeedTokenVerifyBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) });

export const SeedTokenVerifyReply = Type.Object(
  {},
  { additionalProperties: false, description: 'The token is valid.' },
);

// The first seed: the same bodies as our v1 routes, ids as JSON integers.

export const Seed1SendCodeReply = Type.Object(
  {
    ...SendCodeReply.properties,
    message: Type.String({ examples: ['Код отправлен по номеру: +79123456789'] }),
  },
  { description: 'The code is on its way by SMS; the message names the phone, as the first seed did.' },
);

export const Seed1Profile = Type.Object(
  { ...ProfileSchema.properties, id: Type.Integer({ examples: [1] }) },
  { additionalProperties: false, description: 'A user profile, its id a JSON integer.' },
);
export type Seed1Profile = Static<typeof Seed1Profile>;

export const Seed1VerifyReply = Type.Object(
  { ...VerifyReply.properties, user: Seed1Profile },
  { description: 'Signed in: the profile (integer id) and a new session.' },
);
