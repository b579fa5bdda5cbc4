import { AppError, requirePhone, type Config, type SmsQueue } from '@refstack/shared';
import { canonicalOtp, generateOtp, hashOtp } from './otp-code.js';
import type { OtpLimits, OtpStore } from './otp-store.js';

export interface OtpServiceDeps {
  store: OtpStore;
  sms: SmsQueue;
  config: Pick<Config, 'otp' | 'phone' | 'sendCodeIpPerHour'>;
  now: () => number;
}

export interface SendCodeResult {
  message: string;
  phone: string;
  expires_in: number;
  resend_in: number;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function lifetimeText(ttlSeconds: number): string {
  if (ttlSeconds % 60 !== 0) return `${ttlSeconds} seconds`;
  const minutes = ttlSeconds / 60;
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

export function otpServiceFactory({ store, sms, config, now }: OtpServiceDeps) {
  const { otp } = config;
  const limits: OtpLimits = {
    ttlMs: otp.ttlSeconds * 1000,
    maxAttempts: otp.maxAttempts,
    resendMs: otp.resendSeconds * 1000,
    maxSendsPerHour: otp.maxSendsPerHour,
    maxFailedPerDay: otp.maxFailedPerDay,
  };

  return {
    /**
     * Limits are checked in the contract's order: the caller's address, then the phone's cooldown,
     * then the phone's hourly count. The answer never depends on whether the phone has an account.
     */
    async sendCode(phoneInput: string, ip: string): Promise<SendCodeResult> {
      const phone = requirePhone(phoneInput, config.phone);
      const at = now();
      const ipAdmission = await store.admitIp(ip, config.sendCodeIpPerHour, at);
      if (!ipAdmission.allowed) {
        throw new AppError('rate_limited', 'Too many code requests from this address; try again later.', { retryAfter: seconds(ipAdmission.retryAfterMs) });
      }
      const code = generateOtp(otp.length);
      const issued = await store.issue(phone, hashOtp(otp.hmacSecret, phone, code), limits, at);
      if (issued.result === 'resend_too_soon') {
        throw new AppError('resend_too_soon', 'A code was sent to this phone moments ago; wait before asking again.', { retryAfter: seconds(issued.retryAfterMs) });
      }
      if (issued.result === 'rate_limited') {
        throw new AppError('rate_limited', 'Too many codes for this phone; try again later.', { retryAfter: seconds(issued.retryAfterMs) });
      }
      await sms.send({ kind: 'otp', to: phone, text: `Your login code is ${code}. It expires in ${lifetimeText(otp.ttlSeconds)}.` });
      return { message: 'Code sent', phone, expires_in: otp.ttlSeconds, resend_in: otp.resendSeconds };
    },

    /** Checks a code and counts the attempt; returns the code's hash for `consume` on success. */
    async check(phone: string, codeInput: string | number): Promise<string> {
      const code = canonicalOtp(codeInput, otp.length);
      if (code === null) {
        const message = `must be ${otp.length} digits`;
        throw new AppError('validation_failed', `code ${message}`, { errors: [{ field: 'code', message }] });
      }
      const codeHash = hashOtp(otp.hmacSecret, phone, code);
      const outcome = await store.check(phone, codeHash, limits, now());
      switch (outcome.result) {
        case 'ok':
          return codeHash;
        case 'invalid':
          throw new AppError('otp_invalid', 'The code is wrong.', { extensions: { attempts_left: outcome.attemptsLeft } });
        case 'expired':
          throw new AppError('otp_expired', 'No valid code for this phone: it expired, was used, or was never requested.');
        case 'attempts_exceeded':
          throw new AppError('otp_attempts_exceeded', 'Too many wrong codes; request a new one.', { extensions: { attempts_left: 0 } });
        case 'rate_limited':
          throw new AppError('rate_limited', 'Too many wrong codes for this phone today; try again later.', { retryAfter: seconds(outcome.retryAfterMs) });
      }
    },

    /** Spends a checked code; false when a parallel request spent it first. */
    consume(phone: string, codeHash: string): Promise<boolean> {
      return store.consume(phone, codeHash, now());
    },
  };
}

export type OtpService = ReturnType<typeof otpServiceFactory>;
