import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { InviteCodeInput, PhoneInput, ProfileSchema } from './api-schemas.js';

/**
 * The one call between the services: auth asks referral for the user behind a verified phone
 * (creating it on first sign-in, applying an invite if given), with INTERNAL_TOKEN_HEADER.
 */
export const SIGN_IN_PATH = '/internal/v1/users/sign-in';

export const SignInBody = Type.Object({ phone: PhoneInput, invite_code: Type.Optional(InviteCodeInput) });
export type SignInRequest = Static<typeof SignInBody>;

export const SignInResultSchema = Type.Object({
  user: ProfileSchema,
  created: Type.Boolean(),
  roles: Type.Array(Type.String()),
});
export type SignInResult = Static<typeof SignInResultSchema>;

const signInResult = Compile(SignInResultSchema);

/** The sign-in answer as its schema says, or undefined: what arrives over the wire is not trusted. */
export function parseSignInResult(body: unknown): SignInResult | undefined {
  return signInResult.Check(body) ? body : undefined;
}
