import { Worker, type Job } from 'bullmq';
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
    { connection: options.connection, prefix: options.prefix, concurrency: options.concurrency, autorun: true },
  );
  worker.on('completed', (job) => log.info({ job_id: job.id, kind: job.data.kind, attempt: job.attemptsMade }, 'sms sent'));
  worker.on('failed', (job, error) =>
    log.warn({ job_id: job?.id, kind: job?.data.kind, attempt: job?.attemptsMade, reason: error.message }, 'sms send failed'),
  );
  worker.on('error', (error) => log.error({ reason: error.message }, 'sms worker error'));
  return worker;
}
