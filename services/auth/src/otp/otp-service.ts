import { randomBytes } from 'node:crypto';
import {
  AppError,
  AUTH_VERIFY_OVERHEAD_MS,
  clientBucket,
  smsLocaleFor,
  type Config,
  type SmsLocale,
} from '@refstack/shared/contracts';
import type { GuardPass, SmsGuard } from '../guard/sms-guard.js';
import { type SmsQueue } from '@refstack/shared/platform';
import { canonicalOtp, generateOtp, hashOtp } from './otp-code.js';
import type { OtpLimits, OtpStore } from './otp-store.js';

export interface OtpServiceDeps {
  store: OtpStore;
  sms: SmsQueue;
  guard: SmsGuard;
  config: Pick<
    Config,
    'otp' | 'phone' | 'sendCodeIpPerHour' | 'verifyIpFailedPerHour' | 'referralTimeoutMs' | 'sms' | 'guard'
  >;
  now: () => number;
  /** Told of each code that signed someone in (for the SMS funnel); never delays or fails the sign-in. */
  onVerified?: (phone: string) => void;
}

export interface SendCodeInput {
  phone: string;
  ip: string;
  /** The language the client asked for; otherwise the number's country decides. */
  locale?: SmsLocale | undefined;
  /** The bot challenge's token, when the client solved one. */
  captchaToken?: string | undefined;
}

export interface SendCodeResult {
  message: string;
  phone: string;
  expires_in: number;
  resend_in: number;
}

/** A matched code, held for the sign-in that matched it until `consume` or `release`. */
export interface OtpClaim {
  phone: string;
  claimId: string;
  /** When the code was sent (ms): its range's conversion counts it with that send. */
  sentAt: number;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export function otpServiceFactory({ store, sms, guard, config, now, onVerified }: OtpServiceDeps) {
  const { otp } = config;
  const limits: OtpLimits = {
    ttlMs: otp.ttlSeconds * 1000,
    maxAttempts: otp.maxAttempts,
    resendMs: otp.resendSeconds * 1000,
    maxSendsPerHour: otp.maxSendsPerHour,
    maxFailedPerDay: otp.maxFailedPerDay,
    phoneFailedPerDay: otp.phoneFailedPerDay,
    // Longer than a verify can take in auth, so a live sign-in never loses its code to a parallel one.
    claimMs: config.referralTimeoutMs + AUTH_VERIFY_OVERHEAD_MS,
  };

  return {
    /**
     * Checks in the contract's order: the number (destination policy), the bot challenge, the
     * caller's address, the number's range and the day's budget, then the phone's limits for this
     * caller and its resend gap. Nothing is counted for a call refused before its step. The answer
     * never depends on whether the phone has an account. A test number (TEST_PHONES) goes the same
     * way with its fixed code, except that nothing is sent, so nothing counts against its range or
     * the budget.
     */
    async sendCode({ phone: phoneInput, ip, locale, captchaToken }: SendCodeInput): Promise<SendCodeResult> {
      const phone = guard.destination(phoneInput);
      const bucket = clientBucket(ip);
      const at = now();
      const testPhone = config.guard.testPhones.get(phone);
      const fixedCode = testPhone && at < testPhone.expiresAt ? testPhone.code : undefined;
      // A test number is never sent: for the range's risk signals it is as a safe-listed one.
      const safe = fixedCode ? Promise.resolve(true) : guard.safeLookup(phone);
      await guard.challenge({ phone, ip, captchaToken, clientBucket: bucket, safe, now: at });
      const admission = await store.admitSend(bucket, config.sendCodeIpPerHour, at);
      if (!admission.allowed) {
        throw new AppError('rate_limited', 'Too many code requests from this address; try again later.', {
          retryAfter: seconds(admission.retryAfterMs),
        });
      }
      const pass: GuardPass = fixedCode
        ? { release: async () => undefined }
        : await guard.admit({ phone, now: at, safe });
      const code = fixedCode ?? generateOtp(otp.length);
      let issued;
      try {
        issued = await store.issue(phone, bucket, hashOtp(otp.hmacSecret, phone, code), limits, at);
      } catch (error) {
        await pass.release().catch(() => undefined);
        throw error;
      }
      if (issued.result !== 'ok') {
        await pass.release();
        throw issued.result === 'resend_too_soon'
          ? new AppError('resend_too_soon', 'A code was sent to this phone moments ago; wait before asking again.', {
              retryAfter: seconds(issued.retryAfterMs),
            })
          : new AppError('rate_limited', 'Too many codes or wrong tries for this phone; try again later.', {
              retryAfter: seconds(issued.retryAfterMs),
            });
      }
      const { issueId, replacesLive, withdraw } = issued;
      if (!fixedCode) {
        try {
          await sms.send({
            kind: 'otp',
            to: phone,
            code,
            issueId,
            replacesLive,
            ttlSeconds: otp.ttlSeconds,
            locale: smsLocaleFor(phone, locale, config.sms.defaultLocale),
            expiresAt: at + limits.ttlMs,
          });
        } catch (error) {
          // Nothing was sent: the number's range and budget get their place back, and the code
          // its resend gap, so the client's retry gets a code at once instead of a wait.
          await Promise.all([pass.release().catch(() => undefined), withdraw().catch(() => undefined)]);
          throw error;
        }
      }
      return { message: 'Code sent', phone, expires_in: otp.ttlSeconds, resend_in: otp.resendSeconds };
    },

    /**
     * Checks a code and counts the attempt. A match is claimed for this caller, who must then
     * `consume` it (signed in) or `release` it (the sign-in failed, the code stays valid).
     */
    async check(phone: string, codeInput: string | number, ip: string): Promise<OtpClaim> {
      const code = canonicalOtp(codeInput, otp.length);
      if (code === null) {
        const message = `must be ${otp.length} digits`;
        throw new AppError('validation_failed', `code ${message}`, { errors: [{ field: 'code', message }] });
      }
      const bucket = clientBucket(ip);
      const at = now();
      // A try is reserved from the client's hourly budget before the guess is looked at; only a
      // wrong code, a burned code or no code at all keeps it spent.
      const reservation = await store.reserveVerify(bucket, config.verifyIpFailedPerHour, at);
      if (!reservation.allowed) {
        throw new AppError('rate_limited', 'Too many failed sign-in attempts from this address; try again later.', {
          retryAfter: seconds(reservation.retryAfterMs),
        });
      }
      const claimId = randomBytes(12).toString('base64url');
      const outcome = await store.check(phone, bucket, hashOtp(otp.hmacSecret, phone, code), claimId, limits, at);
      if (outcome.result === 'claimed' || outcome.result === 'rate_limited') await reservation.release();
      switch (outcome.result) {
        case 'ok':
          // Given back while the sign-in goes on, not before it: should that fail, the client has
          // one try fewer this hour, and nobody waited for it.
          reservation.release().catch(() => undefined);
          return { phone, claimId, sentAt: outcome.sentAt };
        case 'claimed':
          throw new AppError('otp_expired', 'This code is being used by another sign-in right now.');
        case 'invalid':
          throw new AppError('otp_invalid', 'The code is wrong.', {
            extensions: { attempts_left: outcome.attemptsLeft },
          });
        case 'expired':
          throw new AppError(
            'otp_expired',
            'No valid code for this phone: it expired, was used, or was never requested.',
          );
        case 'attempts_exceeded':
          throw new AppError(
            'otp_attempts_exceeded',
            'Too many wrong codes; request a new one once retry_after has passed.',
            {
              retryAfter: seconds(outcome.retryAfterMs),
              extensions: { attempts_left: 0 },
            },
          );
        case 'rate_limited':
          throw new AppError('rate_limited', 'Too many wrong codes for this phone; try again later.', {
            retryAfter: seconds(outcome.retryAfterMs),
          });
      }
    },

    /** Spends a claimed code; false when the claim was lost (it outlived its lease). */
    consume(claim: OtpClaim): Promise<boolean> {
      return store.consume(claim.phone, claim.claimId);
    },

    /**
     * The spent code did its work: it counts as reached (the guard's conversion, the SMS funnel).
     * Told once the work stood, so that a code given back and used again counts once.
     */
    reached(claim: OtpClaim): void {
      if (config.guard.testPhones.has(claim.phone)) return;
      guard.verified(claim.phone, claim.sentAt);
      onVerified?.(claim.phone);
    },

    /** Gives a spent code back to the sign-in that spent it but could not open its session. */
    unspend(claim: OtpClaim): Promise<void> {
      return store.unspend(claim.phone, claim.claimId);
    },

    /** Gives a claimed code back for a retry. */
    release(claim: OtpClaim): Promise<void> {
      return store.release(claim.phone, claim.claimId);
    },
  };
}

export type OtpService = ReturnType<typeof otpServiceFactory>;
