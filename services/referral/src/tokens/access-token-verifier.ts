import { createVerifier } from 'fast-jwt';
import { LRUCache } from 'lru-cache';
import {
  ACCESS_TOKEN_ALGORITHM,
  ACCESS_TOKEN_REQUIRED_CLAIMS,
  AppError,
  type Config,
  type VerifiedAccessClaims,
} from '@refstack/shared/contracts';
import type { RevocableClaims } from '@refstack/shared/platform';
import { isBigintId } from '../paging/cursor.js';
import type { JwksClient } from './jwks-client.js';

/** Who a valid access token says the caller is. */
export interface AccessTokenUser {
  sub: string;
  phone: string;
  roles: string[];
}

/** Whether a token's session or user was ended before it expired (Revocations). */
export interface RevocationCheck {
  isRevoked(claims: RevocableClaims): boolean;
}

type Verify = (token: string) => VerifiedAccessClaims;
/**
 * A verified token: what it says, when it expires, which key signed it, and what a revocation is
 * matched against (its issue time and session), so that a remembered token is refused as soon as
 * its session or user is revoked.
 */
type Remembered = { user: AccessTokenUser; exp: number; kid: string; iat: number; sid: string | undefined };

/** How many verified tokens are remembered; the least recently used go first. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

const unauthorized = (detail = 'A valid access token is required: `Authorization: Bearer <access>`.') =>
  new AppError('unauthorized', detail);
const sessionEnded = () => unauthorized('The session of this access token has ended; sign in again.');

/**
 * Verifies access tokens locally with auth's published keys: ES256 only, issuer, audience, expiry
 * and subject required, one verifier per key id. Verified tokens are remembered whole (the key is
 * the entire token, so no other token can hit an entry) until they expire, in a bounded LRU: a token
 * is checked cryptographically once, and a repeat costs one map lookup. When auth stops publishing a
 * key, its verifier and every remembered token it signed are dropped with it. A token whose session
 * or user was revoked is refused on every path, the remembered one included: a revocation is a map
 * lookup kept up to date from Redis, never a call per request.
 */
export class AccessTokenVerifier {
  private readonly verifiers = new Map<string, Verify>();
  private readonly verified = new LRUCache<string, Remembered>({ max: VERIFIED_TOKEN_CACHE_SIZE });

  constructor(
    private readonly jwks: JwksClient,
    private readonly config: Pick<Config, 'tokens'>,
    private readonly revocations: RevocationCheck,
    /** Milliseconds since the epoch; tests move it instead of sleeping. */
    private readonly now: () => number = Date.now,
  ) {
    jwks.onRetired((kids) => {
      for (const kid of kids) this.verifiers.delete(kid);
      const signedByRetired = [...this.verified.entries()]
        .filter(([, entry]) => kids.has(entry.kid))
        .map(([token]) => token);
      for (const token of signedByRetired) this.verified.delete(token);
    });
  }

  /** The caller behind a compact JWS, or an `unauthorized` problem (503 while no key can be fetched). */
  async verify(token: string): Promise<AccessTokenUser> {
    const known = this.verified.get(token);
    // Published still: a token whose first check ended just as its key was retired.
    if (known && known.exp * 1000 > this.now() && this.jwks.isPublished(known.kid)) {
      if (this.revocations.isRevoked({ sub: known.user.sub, iat: known.iat, sid: known.sid })) throw sessionEnded();
      return known.user;
    }
    let kid: unknown;
    try {
      kid = (
        JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as { kid?: unknown }
      ).kid;
    } catch {
      throw unauthorized();
    }
    const verify = await this.verifierFor(kid);
    let claims: VerifiedAccessClaims;
    try {
      claims = verify(token);
    } catch {
      throw unauthorized();
    }
    // fast-jwt checks expiry by the real clock; this service's own clock has the last word.
    if (claims.exp * 1000 <= this.now()) throw unauthorized();
    if (typeof claims.sub !== 'string' || !isBigintId(claims.sub))
      throw unauthorized('The access token has no valid subject.');
    const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    // iat is not a required claim: a token without one cannot show that it was issued after a
    // revocation of its user, so it counts as the oldest.
    const iat = typeof claims.iat === 'number' ? claims.iat : 0;
    if (this.revocations.isRevoked({ sub: claims.sub, iat, sid })) throw sessionEnded();
    const user: AccessTokenUser = { sub: claims.sub, phone: claims.phone, roles: claims.roles };
    this.verified.set(token, { user, exp: claims.exp, kid: kid as string, iat, sid });
    return user;
  }

  private async verifierFor(kid: unknown): Promise<Verify> {
    // Published still: a verifier made while its key was being retired is not used.
    const known = typeof kid === 'string' && this.jwks.isPublished(kid) ? this.verifiers.get(kid) : undefined;
    if (known) return known;
    const key = await this.jwks.publicPem(kid);
    const verify = createVerifier({
      key,
      algorithms: [ACCESS_TOKEN_ALGORITHM],
      allowedIss: this.config.tokens.issuer,
      allowedAud: this.config.tokens.audience,
      // allowedIss and allowedAud only check a claim that is present: without these names here a
      // token minted with no issuer or no audience at all would pass.
      requiredClaims: [...ACCESS_TOKEN_REQUIRED_CLAIMS],
    }) as unknown as Verify;
    this.verifiers.set(kid as string, verify);
    return verify;
  }
}
