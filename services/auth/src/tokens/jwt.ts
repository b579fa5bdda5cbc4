import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance } from 'fastify';
import {
  ACCESS_TOKEN_ALGORITHM,
  ACCESS_TOKEN_REQUIRED_CLAIMS,
  type AccessClaims,
  type Config,
  type VerifiedAccessClaims,
} from '@refstack/shared/contracts';
import type { Keyring } from './keyring.js';

/** Signing and checking access tokens: the one place auth touches JWTs. */
export interface AccessTokenCodec {
  /** Signs with the current key; kid, iss, aud and exp come from the configuration, iat from `now`. */
  sign(claims: AccessClaims): string;
  /** The claims of a valid token, by the key its kid names; rejects otherwise. */
  verify(token: string): Promise<VerifiedAccessClaims>;
}

export async function registerAccessTokens(
  app: FastifyInstance,
  keyring: Keyring,
  config: Pick<Config, 'tokens'>,
  now: () => number,
): Promise<AccessTokenCodec> {
  const { issuer, audience, accessTtlSeconds } = config.tokens;
  // A token without an issuer, audience, expiry or subject is refused, not waved through.
  const verifyOptions = {
    algorithms: [ACCESS_TOKEN_ALGORITHM],
    allowedIss: issuer,
    allowedAud: audience,
    requiredClaims: [...ACCESS_TOKEN_REQUIRED_CLAIMS],
  };
  await app.register(fastifyJwt, {
    secret: { private: keyring.signing.privatePem, public: keyring.signing.publicPem },
    sign: {
      algorithm: ACCESS_TOKEN_ALGORITHM,
      kid: keyring.signing.kid,
      iss: issuer,
      aud: audience,
      expiresIn: `${accessTtlSeconds}s`,
    },
    verify: verifyOptions,
  });
  return {
    sign: (claims) => app.jwt.sign({ ...claims, iat: Math.floor(now() / 1000) }),
    async verify(token) {
      const kid = app.jwt.decode<{ header: { kid?: string } }>(token, { complete: true })?.header.kid;
      const key = keyring.publicPem(kid);
      if (!key) throw new Error('unknown key');
      return app.jwt.verify<VerifiedAccessClaims>(token, { key, ...verifyOptions });
    },
  };
}
