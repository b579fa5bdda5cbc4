import type { JobsOptions } from 'bullmq';

/** The one queue the SMS worker consumes; producers in auth and referral put jobs on it. */
export const SMS_QUEUE = 'sms';

/**
 * BullMQ key prefix. The hash tag keeps all of a queue's keys in one Redis Cluster slot, which
 * BullMQ's Lua scripts require.
 */
export function queuePrefix(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}:{bullmq}`;
}

export type SmsJobKind = 'otp' | 'invite_activated';

export interface SmsJob {
  kind: SmsJobKind;
  /** E.164 recipient. */
  to: string;
  /** The whole message text as it is sent. */
  text: string;
}

/**
 * Sends retry with exponential backoff and jitter. A finished job leaves Redis at once because an
 * OTP message holds a live code; a failed one is kept briefly for inspection (its code has expired
 * by then) and bounded in number.
 */
export const SMS_JOB_OPTIONS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 500, jitter: 0.5 },
  removeOnComplete: true,
  removeOnFail: { age: 24 * 3600, count: 1000 },
};
