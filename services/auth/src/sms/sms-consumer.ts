import { UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { SMS_BACKOFF, SMS_QUEUE, smsRetryDelay, type SmsJob } from '@refstack/shared/contracts';
import { SmsPermanentError, type SmsProvider } from './sms-provider.js';

export interface SmsWorkerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SmsWorkerOptions {
  connection: Redis;
  prefix: string;
  provider: SmsProvider;
  concurrency: number;
  log: SmsWorkerLogger;
  workerOptions?: Partial<WorkerOptions>;
  /** Milliseconds since the epoch; tests move it to expire messages. */
  now?: () => number;
}

/**
 * Consumes the SMS queue. Delivery is at-least-once: a job whose worker dies mid-send is picked up
 * again after its lock expires. A message past its expiry (a login code no one can use any more)
 * is dropped unsent, and a send that keeps failing is retried until then, never after. Log lines
 * carry the job id and kind, never the text (it may hold a code).
 */
export function createSmsWorker(options: SmsWorkerOptions): Worker<SmsJob> {
  const { provider, log } = options;
  const now = options.now ?? Date.now;
  const worker = new Worker<SmsJob>(
    SMS_QUEUE,
    async (job: Job<SmsJob>) => {
      // Jobs queued by an earlier version carry no expiry; they are sent as before.
      if (typeof job.data.expiresAt === 'number' && now() >= job.data.expiresAt) {
        log.info(
          { job_id: job.id, kind: job.data.kind, attempt: job.attemptsMade },
          'sms dropped: expired before it could be sent',
        );
        return 'expired';
      }
      try {
        await provider.send(job.data.to, job.data.text);
      } catch (error) {
        // A provider that refuses the message for good is not asked again.
        if (error instanceof SmsPermanentError) throw new UnrecoverableError(error.message);
        throw error;
      }
      return 'sent';
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      autorun: true,
      // A send takes milliseconds; a worker that died mid-send is noticed within seconds (not
      // BullMQ's default half minute) and its job handed to another worker, well inside a code's life.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string) =>
          type === SMS_BACKOFF ? smsRetryDelay(attemptsMade) : 1000,
      },
      ...options.workerOptions,
    },
  );
  worker.on('completed', (job, result) => {
    if (result === 'sent') log.info({ job_id: job.id, kind: job.data.kind, attempt: job.attemptsMade }, 'sms sent');
  });
  worker.on('failed', (job, error) =>
    log.warn(
      { job_id: job?.id, kind: job?.data.kind, attempt: job?.attemptsMade, reason: error.message },
      'sms send failed',
    ),
  );
  worker.on('error', (error) => log.error({ reason: error.message }, 'sms worker error'));
  return worker;
}
