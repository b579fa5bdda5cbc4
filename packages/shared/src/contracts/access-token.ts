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
}

export interface VerifiedAccessClaims extends AccessClaims {
  iss: string;
  aud: string;
  iat: number;
  exp: number;
}

/** The only algorithm either side accepts. */
export const ACCESS_TOKEN_ALGORITHM = 'ES256' as const;

/** A token without one of these is refused, whoever signed it. */
export const ACCESS_TOKEN_REQUIRED_CLAIMS = ['iss', 'aud', 'exp', 'sub'] as const;
