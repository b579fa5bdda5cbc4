import type { OtpLimits } from '../../src/otp/otp-store.js';

/** Limits for tests that issue codes straight into the store: a five-minute code, few refusals. */
export const STORE_LIMITS: OtpLimits = {
  ttlMs: 300_000,
  maxAttempts: 5,
  resendMs: 0,
  maxSendsPerHour: 10,
  maxFailedPerDay: 10,
  phoneFailedPerDay: 100,
  claimMs: 10_000,
};
