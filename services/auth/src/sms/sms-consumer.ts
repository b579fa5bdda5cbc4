import { UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import {
  isInviteDigest,
  isPreRendered,
  phoneCountry,
  SMS_BACKOFF,
  SMS_QUEUE,
  smsLocaleFor,
  smsRetryDelay,
  type InviteDigestSmsJob,
  type QueuedSmsJob,
  type SmsConfig,
  type SmsProviderName,
} from '@refstack/shared/contracts';
import type { InviteDigests } from './invite-digest.js';
import type { OutgoingSms } from './message.js';
import type { MessageLog, MessageRef } from './message-log.js';
import { renderSms } from './render.js';
import type { SmsRouter } from './router.js';
import type { SmsFunnelMetrics } from './sms-metrics.js';
import { LOCALE_TEXTS } from './templates/index.js';

export interface SmsWorkerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SmsWorkerOptions {
  connection: Redis;
  prefix: string;
  router: SmsRouter;
  messages: MessageLog;
  funnel: SmsFunnelMetrics;
  /** Whether a login code is still its phone's (OtpStore.isCurrent): a replaced or used one is not sent. */
  codes: { isCurrent(phone: string, issueId: string): Promise<boolean> };
  /** Coalesced inviter notices; a digest job is dropped unsent without it. */
  digests?: InviteDigests;
  sms: Pick<SmsConfig, 'defaultLocale' | 'androidAppHash' | 'webOtpDomain' | 'concurrency'>;
  log: SmsWorkerLogger;
  workerOptions?: Partial<WorkerOptions>;
  /** Milliseconds since the epoch; tests move it to expire messages. */
  now?: () => number;
}

export type SmsJobResult =
  'sent' | 'expired' | 'replaced' | 'already_sent' | 'nothing_pending' | 'budget_exhausted' | 'inviter_gone';

/** The message a job describes, rendered in its recipient's language with the autofill lines. */
export function outgoingSms(
  id: string,
  job: Exclude<QueuedSmsJob, InviteDigestSmsJob>,
  sms: SmsWorkerOptions['sms'],
): OutgoingSms {
  const locale = job.locale ?? smsLocaleFor(job.to, undefined, sms.defaultLocale);
  const base = { id, kind: job.kind, to: job.to, country: phoneCountry(job.to), locale, expiresAt: job.expiresAt };
  // Queued by an earlier version with its text already written.
  if (isPreRendered(job)) return { ...base, text: job.text };
  const text = renderSms(job, LOCALE_TEXTS[locale], sms);
  return job.kind === 'otp' ? { ...base, text, code: job.code } : { ...base, text };
}

/**
 * Consumes the SMS queue. Each message goes through its route's providers (SmsRouter) and its
 * status is kept in the MessageLog under the job's id. Delivery is at least once: a provider may
 * have taken a message whose acceptance was never recorded (the worker died, or the provider's
 * answer was lost and the next provider was asked), and a worker that lost its job's lock while a
 * provider call ran (stalled, or cut off from Redis) may see another worker send it too. A message
 * past its expiry (a login code no one can use any more) is dropped unsent, and one that no
 * provider takes is retried until then, never after. A message a provider already took is not
 * sent again when its job runs a second time. Log lines carry the message id and kind, never the
 * text (it may hold a code).
 */
export function createSmsWorker(options: SmsWorkerOptions): Worker<QueuedSmsJob, SmsJobResult> {
  const { router, messages, funnel, log } = options;
  const now = options.now ?? Date.now;

  /** Writes onto the message's record only if it was opened (by this run or an earlier try). */
  async function expire(ref: MessageRef, attempt: number): Promise<'expired' | 'already_sent'> {
    const { changed, record } = await messages.expired(ref, 'expired before a provider took it', now());
    // Another run of the same job (on a worker that lost its lock) settled it meanwhile.
    if (!changed && record !== undefined) return 'already_sent';
    funnel.failed.inc({ provider: 'none', country: ref.country, kind: ref.kind });
    log.info({ sms_id: ref.id, kind: ref.kind, attempt }, 'sms dropped: expired before it could be sent');
    return 'expired';
  }

  /** Writes onto the message's record only if an earlier try opened it. */
  async function replaced(ref: MessageRef, attempt: number): Promise<'replaced' | 'already_sent'> {
    const { changed, record } = await messages.expired(
      ref,
      'replaced by a newer code, or used, before a provider took it',
      now(),
    );
    if (!changed && record !== undefined) return 'already_sent';
    funnel.failed.inc({ provider: 'none', country: ref.country, kind: ref.kind });
    log.info({ sms_id: ref.id, kind: ref.kind, attempt }, 'sms dropped: its code is no longer the phone’s');
    return 'replaced';
  }

  /**
   * A window's digest becomes the notice it sends, kept on the job so a retry sends the same one.
   * The worker dying between the two loses that window's notice, never sends it twice.
   */
  async function digest(job: Job<QueuedSmsJob, SmsJobResult>, data: InviteDigestSmsJob) {
    const outcome = options.digests ? await options.digests.take(data, now()) : 'nothing_pending';
    if (outcome === 'inviter_gone') {
      log.info({ sms_id: job.id, kind: 'invite_activated' }, 'sms dropped: the inviter’s number changed');
    }
    if (outcome === 'budget_exhausted') {
      log.warn({ sms_id: job.id, kind: 'invite_activated' }, 'inviter notice not sent: the day’s sms budget is spent');
    }
    if (typeof outcome === 'string') return outcome;
    await job.updateData(outcome);
    return outcome;
  }

  async function handle(job: Job<QueuedSmsJob, SmsJobResult>): Promise<SmsJobResult> {
    const id = String(job.id);
    if (now() >= job.data.expiresAt && isInviteDigest(job.data)) return 'expired';
    const data = isInviteDigest(job.data) ? await digest(job, job.data) : job.data;
    if (typeof data === 'string') return data;
    // A notice taken before its inviter moved or deleted the account (retried while providers
    // failed) is for the number the account left: dropped before any record names that number.
    // One just taken was checked by the take itself.
    const notice =
      data.kind === 'invite_activated' && !isPreRendered(data) && !isInviteDigest(job.data) ? data : undefined;
    if (notice?.inviterId !== undefined && options.digests) {
      if (!(await options.digests.stillTheirs(notice.inviterId, notice.noticeEpoch ?? '0'))) {
        log.info(
          { sms_id: id, kind: data.kind, attempt: job.attemptsMade },
          'sms dropped: the inviter’s number changed',
        );
        return 'inviter_gone';
      }
    }
    const ref: MessageRef = { id, kind: data.kind, to: data.to, country: phoneCountry(data.to) };
    // A code asked for again while providers were down: the old one would arrive after (or with)
    // the new one, cost a message and fail as a wrong try when typed. Known before the record is
    // opened: a code gone because its number was forgotten since (a deleted account, retried while
    // providers failed) must not bring the number back in a record and its list.
    const current =
      'issueId' in data && data.issueId !== undefined ? await options.codes.isCurrent(data.to, data.issueId) : true;
    if (!current) return now() >= data.expiresAt ? expire(ref, job.attemptsMade) : replaced(ref, job.attemptsMade);
    // One round trip for both (the store's connection pipelines what one turn asks for), and the
    // phone's list is read before this message joins it: a number's first message, the usual
    // case, finds the list empty and needs no second read.
    const [startAfter, record] = await Promise.all([lastCarrier(data, id), messages.open(ref, now())]);
    if (record.status !== 'queued') return 'already_sent';
    // Only after opening: the record a message expired in the queue needs exists only from here,
    // and a message already sent (its job run again after the expiry) stays sent.
    if (now() >= data.expiresAt) return expire(ref, job.attemptsMade);
    const message = outgoingSms(id, data, options.sms);
    const outcome = await router.send(message, {
      ...(startAfter ? { startAfter } : {}),
      onAttemptFailed: async (provider, reason) => {
        await messages.attemptFailed(ref, provider, reason, now()).catch(() => undefined);
      },
    });
    const labels = { country: ref.country, kind: ref.kind };
    switch (outcome.result) {
      case 'sent':
        funnel.sent.inc({ provider: outcome.provider, ...labels });
        log.info({ sms_id: id, kind: ref.kind, provider: outcome.provider, attempt: job.attemptsMade }, 'sms sent');
        // The provider has it: failing the job now would send it twice, so a lost record is only logged.
        await messages.sent(ref, outcome.provider, outcome.providerMessageId, now()).catch((error: unknown) => {
          log.error({ sms_id: id, reason: (error as Error).message }, 'sms status not recorded');
        });
        return 'sent';
      case 'refused':
        funnel.failed.inc({ provider: outcome.provider, ...labels });
        // A retry would ask the provider again for a number it refused for good (and maybe charge
        // for it), so a lost status is only logged here too.
        await messages.failed(ref, outcome.provider, outcome.reason, now()).catch((error: unknown) => {
          log.error({ sms_id: id, reason: (error as Error).message }, 'sms status not recorded');
        });
        throw new UnrecoverableError(outcome.reason);
      case 'expired':
        return expire(ref, job.attemptsMade);
      case 'unavailable':
        throw new Error(`no provider took the message (${outcome.reasons.join('; ') || 'none carries it'})`);
    }
  }

  /**
   * The provider that carried the phone's previous code, if that code was still valid when this
   * one was asked for: a resend suggests the first did not arrive, so this one starts with the
   * next. A code asked for after the previous one was used (a new sign-in, a confirmation) starts
   * with the first provider again.
   */
  async function lastCarrier(
    job: Exclude<QueuedSmsJob, InviteDigestSmsJob>,
    id: string,
  ): Promise<SmsProviderName | undefined> {
    if (job.kind !== 'otp' || isPreRendered(job) || job.replacesLive === false) return undefined;
    const previous = await messages.lastCodeMessage(job.to, now() - job.ttlSeconds * 1000, id);
    return previous?.provider ?? undefined;
  }

  const worker = new Worker<QueuedSmsJob, SmsJobResult>(SMS_QUEUE, handle, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.sms.concurrency,
    autorun: true,
    // The lock is renewed while a job runs, however many providers it tries; a worker that died
    // mid-send is noticed within seconds (not BullMQ's default half minute) and its job handed on.
    lockDuration: 10_000,
    stalledInterval: 5_000,
    // BullMQ fails a job that stalls twice, and a failed SMS job is removed at once: a code lost
    // without a status. A worker frozen or killed now and then must not lose its jobs; a job that
    // takes its worker down every time (it stalls at each run) is dropped after ten.
    maxStalledCount: 10,
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string) =>
        type === SMS_BACKOFF ? smsRetryDelay(attemptsMade) : 1000,
    },
    ...options.workerOptions,
  });
  worker.on('failed', (job, error) =>
    log.warn(
      { sms_id: job?.id, kind: job?.data.kind, attempt: job?.attemptsMade, reason: error.message },
      'sms send failed',
    ),
  );
  worker.on('error', (error) => log.error({ reason: error.message }, 'sms worker error'));
  return worker;
}
