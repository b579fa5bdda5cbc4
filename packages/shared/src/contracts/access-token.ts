/**
 * What an access token says, as auth signs it and referral reads it. `iss`, `aud`, `iat` and `exp`
 * are added by the signer from JWT_ISSUER, JWT_AUDIENCE and ACCESS_TOKEN_TTL_SECONDS.
 */
export interface AccessClaims {
  /** The user id, as a string. */
  sub: string;
  phone: string;
  /** `[]` or `["admin"]`; informative only: admin rights are read from the database. */
  roles: string[];
  jti: string;
  /** The refresh session the token was issued for: ending the session ends the token within seconds. */
  sid: string;
  /** When the session's sign-in with an SMS code happened (seconds since the epoch); a refresh keeps it. */
  auth_time: number;
}

/** Tokens signed before sessions were named in them carry neither `sid` nor `auth_time`. */
export interface VerifiedAccessClaims extends Omit<AccessClaims, 'sid' | 'auth_time'> {
  sid?: string;
  auth_time?: number;
  iss: string;
  aud: string;
  iat: number;
  exp: number;
}

/** The only algorithm either side accepts. */
export const ACCESS_TOKEN_ALGORITHM = 'ES256' as const;

/** A token without one of these is refused, whoever signed it. */
export const ACCESS_TOKEN_REQUIRED_CLAIMS = ['iss', 'aud', 'exp', 'sub'] as const;
