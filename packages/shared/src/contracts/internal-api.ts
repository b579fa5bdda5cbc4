import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
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

/**
 * An answer of the other service as its schema says, or undefined: what arrives over the wire is
 * not trusted. Properties the schema does not know are dropped when they are all that is wrong:
 * during a rolling deploy the other service may already answer with a field added since (a new
 * field is optional for one release, so that the other order of updating works too).
 */
export function wireParser<S extends TSchema>(schema: S): (body: unknown) => Static<S> | undefined {
  const check = Compile(schema);
  return (body) => {
    if (check.Check(body)) return body;
    const known = Value.Clean(schema, body);
    return check.Check(known) ? known : undefined;
  };
}

/** The sign-in answer as its schema says, or undefined. */
export const parseSignInResult = wireParser(SignInResultSchema);
