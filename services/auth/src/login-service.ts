import {
  AppError,
  requireInviteCode,
  requirePhone,
  type Config,
  type Profile,
  type Tokens,
} from '@refstack/shared/contracts';
import type { OtpService } from './otp/otp-service.js';
import type { ReferralClient } from './referral-client.js';
import type { SessionOrigin } from './tokens/session-store.js';
import type { TokenService } from './tokens/token-service.js';

export interface LoginServiceDeps {
  otp: OtpService;
  referral: ReferralClient;
  tokens: TokenService;
  config: Pick<Config, 'phone' | 'referralTimeoutMs'>;
  /** A monotonic clock in milliseconds for the verify's own deadline (not the codes' clock). */
  elapsed?: () => number;
}

export interface VerifyInput {
  phone: string;
  code: string | number;
  invite_code?: string | null;
}

/** Time a verify may spend in auth before it calls the referral service (two Redis steps). */
const BEFORE_REFERRAL_MS = 1000;

const unavailable = () =>
  new AppError('service_unavailable', 'Sign-in took too long; the code stays valid, try again shortly.', {
    retryAfter: 1,
  });

/**
 * Verify = check the code (counted) and claim it, sign in at referral (creates the user, applies
 * the invite), and only then spend the code and open a session, both at once. Parallel verifies
 * with the right code: one claims it, the others are refused before they reach referral. A refused
 * invite, an unreachable referral service or a sign-in that ran past its deadline gives the code
 * back, so a login is never answered as failed after it was spent, nor spent after its caller gave
 * up.
 */
export function loginServiceFactory({
  otp,
  referral,
  tokens,
  config,
  elapsed = () => performance.now(),
}: LoginServiceDeps) {
  return {
    async verify(
      input: VerifyInput,
      requestId: string,
      ip: string,
      origin: SessionOrigin,
    ): Promise<{ user: Profile; tokens: Tokens; created: boolean }> {
      const deadline = elapsed() + BEFORE_REFERRAL_MS + config.referralTimeoutMs;
      const phone = requirePhone(input.phone, config.phone);
      let inviteCode: string | undefined;
      if (input.invite_code !== undefined && input.invite_code !== null && input.invite_code.trim() !== '') {
        inviteCode = requireInviteCode(input.invite_code);
      }
      const claim = await otp.check(phone, input.code, ip);
      let signedIn;
      try {
        const left = Math.min(config.referralTimeoutMs, deadline - elapsed());
        if (left <= 0) throw unavailable();
        signedIn = await referral.signIn({ phone, inviteCode }, requestId, left);
        // Past the deadline the gateway may have given up on this request: do not spend the code.
        if (elapsed() > deadline) throw unavailable();
      } catch (error) {
        await otp.release(claim).catch(() => undefined);
        throw error;
      }
      // The code is spent and the session opened at once (one round trip on a single Redis). A claim
      // lost meanwhile (its lease ran out, a new code replaced it) ends the session again before
      // anyone saw its tokens.
      const identity = { sub: signedIn.user.id, phone: signedIn.user.phone, roles: signedIn.roles };
      const [spent, opened] = await Promise.allSettled([otp.consume(claim), tokens.issue(identity, origin)]);
      if (spent.status === 'rejected' || !spent.value) {
        if (opened.status === 'fulfilled') await tokens.endSessions(identity.sub, { only: opened.value.sid });
        if (spent.status === 'rejected') {
          // Spent or not (its answer may be what was lost), the code stays valid for a retry.
          await otp.unspend(claim).catch(() => undefined);
          await otp.release(claim).catch(() => undefined);
          throw spent.reason;
        }
        throw new AppError('otp_expired', 'This code has just been used.');
      }
      if (opened.status === 'rejected') {
        // A failed verify leaves the code valid (the contract), also when only the session failed.
        await otp.unspend(claim).catch(() => undefined);
        throw opened.reason;
      }
      otp.reached(claim);
      const { access, refresh, token_type, expires_in } = opened.value;
      return { user: signedIn.user, tokens: { access, refresh, token_type, expires_in }, created: signedIn.created };
    },
  };
}

export type LoginService = ReturnType<typeof loginServiceFactory>;
