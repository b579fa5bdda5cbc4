import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../contracts/errors.js';
import { queuePrefix, smsJobOptions, SMS_QUEUE, type SmsJob } from '../contracts/queues.js';

export interface SmsQueue {
  /** Puts one message on the bus; a Redis failure becomes a 503 problem. */
  send(job: SmsJob): Promise<void>;
  close(): Promise<void>;
}

/** The producer side of the SMS queue, on an API connection that fails fast while Redis is away. */
export function createSmsQueue(connection: Redis, redisKeyPrefix: string): SmsQueue {
  const queue = new Queue<SmsJob>(SMS_QUEUE, { connection, prefix: queuePrefix(redisKeyPrefix) });
  queue.on('error', () => undefined);
  return {
    async send(job) {
      try {
        await queue.add(job.kind, job, smsJobOptions(job));
      } catch (error) {
        throw new AppError(
          'service_unavailable',
          'The message could not be queued; try again shortly.',
          { retryAfter: 1 },
          error,
        );
      }
    },
    close: () => queue.close(),
  };
}
