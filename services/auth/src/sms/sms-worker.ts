import { Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { SMS_QUEUE, type SmsJob } from '@refstack/shared';
import type { SmsProvider } from './sms-provider.js';

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
}

/**
 * Consumes the SMS queue. Delivery is at-least-once: a job whose worker dies mid-send is picked up
 * again after its lock expires. Log lines carry the job id and kind, never the text (it may hold a code).
 */
export function createSmsWorker(options: SmsWorkerOptions): Worker<SmsJob> {
  const { provider, log } = options;
  const worker = new Worker<SmsJob>(
    SMS_QUEUE,
    async (job: Job<SmsJob>) => {
      await provider.send(job.data.to, job.data.text);
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
      ...options.workerOptions,
    },
  );
  worker.on('completed', (job) => log.info({ job_id: job.id, kind: job.data.kind, attempt: job.attemptsMade }, 'sms sent'));
  worker.on('failed', (job, error) =>
    log.warn({ job_id: job?.id, kind: job?.data.kind, attempt: job?.attemptsMade, reason: error.message }, 'sms send failed'),
  );
  worker.on('error', (error) => log.error({ reason: error.message }, 'sms worker error'));
  return worker;
}
