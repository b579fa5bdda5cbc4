import type { JobsOptions } from 'bullmq';
import type { SmsLocale } from './sms-locale.js';

/** The one queue the SMS worker consumes; producers in auth and referral put jobs on it. */
export const SMS_QUEUE = 'sms';

/**
 * BullMQ key prefix. The hash tag keeps all of a queue's keys in one Redis Cluster slot, which
 * BullMQ's Lua scripts require.
 */
export function queuePrefix(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}:{bullmq}`;
}

export type SmsJobKind = 'otp' | 'invite_activated' | 'phone_changed';

interface SmsJobBase {
  kind: SmsJobKind;
  /** E.164 recipient. */
  to: string;
  /**
   * Milliseconds since the epoch after which the message is worthless (a login code has expired):
   * retries stop then and a job still waiting is dropped unsent.
   */
  expiresAt: number;
  /** The language the recipient reads; when missing, the worker picks it from the number's country. */
  locale?: SmsLocale;
}

/**
 * A login code. The worker renders its text from the locale's template (a provider such as Telegram
 * Gateway takes the code itself, not a text), so the job carries the code, never a rendered text.
 * The job leaves Redis as soon as it is sent, dropped or refused.
 */
export interface OtpSmsJob extends SmsJobBase {
  kind: 'otp';
  code: string;
  /**
   * Which issue of the phone's code this is: a code replaced by a newer one, or already used,
   * before any provider took it is not sent. Absent in jobs of earlier versions (always sent).
   */
  issueId?: string;
  /**
   * The phone's previous code was still valid when this one was issued: this one goes out through
   * the provider after the one that carried that code. Absent in jobs of earlier versions (then a
   * previous code message within the code's lifetime decides).
   */
  replacesLive?: boolean;
  /** The code's lifetime, for the text ("expires in 5 minutes"). */
  ttlSeconds: number;
}

/** The note to an inviter that people activated their invite code. */
export interface InviteNoticeSmsJob extends SmsJobBase {
  kind: 'invite_activated';
  inviteCode: string;
  /** How many people have activated the code so far, this one included. */
  invitedCount: number;
  /** How many of them since the last notice; 1 in a job queued by an earlier version. */
  newCount?: number;
  /** Whose code it is, and their notice epoch when the count was taken (`inviterEpochKey`). */
  inviterId?: string;
  noticeEpoch?: string;
}

/** The note to an account's previous number that the account moved to another one. */
export interface PhoneChangedSmsJob extends SmsJobBase {
  kind: 'phone_changed';
  /** The new number's last digits: enough for the owner to recognise it, not to learn it. */
  newEnding: string;
}

/**
 * An inviter's notices of one window, coalesced (INVITE_NOTICE_WINDOW_SECONDS): queued, delayed by
 * the window, by the window's first activation; each activation adds to the inviter's pending
 * count in Redis (`recordInviteActivation`). When it runs, the worker takes the count and sends one
 * notice saying how many activated the code since the last one.
 */
export interface InviteDigestSmsJob {
  kind: 'invite_digest';
  inviterId: string;
  to: string;
  expiresAt: number;
  locale?: SmsLocale;
  /** The inviter's notice epoch when the job was queued (`inviterEpochKey`); absent in older jobs. */
  noticeEpoch?: string;
}

/** A job queued by an earlier version, whose text was rendered by the producer; it is sent as it is. */
export interface PreRenderedSmsJob extends SmsJobBase {
  text: string;
}

export type SmsJob = OtpSmsJob | InviteNoticeSmsJob | PhoneChangedSmsJob;
/** What the worker may find on the queue: today's jobs and those an earlier version left there. */
export type QueuedSmsJob = SmsJob | InviteDigestSmsJob | PreRenderedSmsJob;

export function isInviteDigest(job: QueuedSmsJob): job is InviteDigestSmsJob {
  return job.kind === 'invite_digest';
}

/** The Redis hash holding an inviter's activations since their last notice (one slot per inviter). */
export function pendingNoticeKey(redisKeyPrefix: string, inviterId: string): string {
  return `${redisKeyPrefix}:notice:{${inviterId}}`;
}

/**
 * An inviter's notice epoch: a new random value each time their notices are forgotten (the account
 * moved or was deleted), '0' before. A notice queued or taken under an earlier epoch is for the
 * number the account left, and is never sent. Same slot as the pending count.
 */
export function inviterEpochKey(redisKeyPrefix: string, inviterId: string): string {
  return `${pendingNoticeKey(redisKeyPrefix, inviterId)}:epoch`;
}

/**
 * How long an epoch is kept after a forgetting: longer than any notice taken before it can live
 * (the longest window, 7 days, and a notice's lifetime after it).
 */
export const INVITER_EPOCH_KEEP_MS = 8 * 24 * 3600 * 1000;

export function isPreRendered(job: QueuedSmsJob): job is PreRenderedSmsJob {
  return typeof (job as Partial<PreRenderedSmsJob>).text === 'string';
}

/** How long an inviter notice is worth sending. */
export const NOTICE_LIFETIME_MS = 24 * 3600 * 1000;

/** The backoff type the SMS worker implements (`smsRetryDelay`). */
export const SMS_BACKOFF = 'sms-capped';
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/**
 * Delay before retry `attemptsMade` (1 for the first retry): doubling from half a second, capped
 * at 30 s so that a provider that comes back is used within half a minute, with jitter so that
 * many failed sends do not return together.
 */
export function smsRetryDelay(attemptsMade: number, random: () => number = Math.random): number {
  const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(delay * (0.5 + random() / 2));
}

/**
 * Options for one message. Retries go on while it is worth sending (the worker drops it at its
 * expiry): the attempt count only has to outlast its lifetime. Whatever the outcome, the job leaves
 * Redis at once, because an OTP message holds a live code.
 */
export function smsJobOptions(job: SmsJob | InviteDigestSmsJob, now: number = Date.now()): JobsOptions {
  const retries = Math.ceil(Math.max(0, job.expiresAt - now) / (MAX_RETRY_MS / 2)) + 8;
  return { attempts: retries + 1, backoff: { type: SMS_BACKOFF }, removeOnComplete: true, removeOnFail: true };
}
