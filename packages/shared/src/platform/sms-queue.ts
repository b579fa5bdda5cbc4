import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { closeRedis, type RedisClient as Redis } from './redis.js';
import { AppError } from '../contracts/errors.js';
import {
  NOTICE_LIFETIME_MS,
  pendingNoticeKey,
  queuePrefix,
  smsJobOptions,
  SMS_QUEUE,
  type InviteDigestSmsJob,
  type SmsJob,
} from '../contracts/queues.js';

/** One activation of an inviter's code, for their coalesced notice. */
export interface InviteActivation {
  inviterId: string;
  /** The inviter's phone. */
  to: string;
  inviteCode: string;
  /** The inviter's invitee count after this activation. */
  invitedCount: number;
  /** INVITE_NOTICE_WINDOW_SECONDS: at most one notice per inviter per window, sent at its end. */
  windowSeconds: number;
  now: number;
}

export interface SmsQueue {
  /** Puts one message on the bus; a Redis failure becomes a 503 problem. */
  send(job: SmsJob): Promise<void>;
  /**
   * Counts an activation towards the inviter's next notice and makes sure one is queued for the
   * end of the window; a Redis failure becomes a 503 problem.
   */
  noticeInviter(activation: InviteActivation): Promise<void>;
  /** Drops an inviter's pending notice (the account was deleted or moved to another number). */
  forgetInviter(inviterId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Adds one activation to an inviter's pending notice: the count since the last notice, the
 * highest invitee count seen (activations may be counted out of order) and the code. Kept until a
 * notice could still be worth sending. KEYS: the inviter's pending hash.
 */
const RECORD_ACTIVATION = `
redis.call('HINCRBY', KEYS[1], 'n', 1)
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if tonumber(ARGV[1]) > total then redis.call('HSET', KEYS[1], 'total', ARGV[1]) end
redis.call('HSET', KEYS[1], 'code', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

interface NoticeCommands {
  recordInviteActivation(key: string, total: number, code: string, ttlMs: number): Promise<number>;
}

const unavailable = (error: unknown) =>
  new AppError('service_unavailable', 'The message could not be queued; try again shortly.', { retryAfter: 1 }, error);

/**
 * The producer side of the SMS queue. Its commands fail within the API connection's command
 * timeout while Redis is away.
 *
 * On a single Redis the queue gets a connection of its own, a duplicate of the API connection: BullMQ
 * defines its scripts (some fifty) on the connection it is given, and an auto-pipelining ioredis
 * client copies every script defined on it into each batch it sends. On a connection of its own only
 * the queue's batches pay for BullMQ's scripts, not every batch of every request. A cluster
 * connection does not auto-pipeline and is shared.
 */
export function createSmsQueue(api: Redis, redisKeyPrefix: string): SmsQueue {
  const own = api instanceof Cluster ? undefined : api.duplicate({ enableOfflineQueue: true });
  const connection = own ?? api;
  if (own) {
    own.on('error', () => undefined);
    own.connect().catch(() => undefined);
  }
  const queue = new Queue<SmsJob | InviteDigestSmsJob>(SMS_QUEUE, { connection, prefix: queuePrefix(redisKeyPrefix) });
  queue.on('error', () => undefined);
  if (!('recordInviteActivation' in connection)) {
    connection.defineCommand('recordInviteActivation', { numberOfKeys: 1, lua: RECORD_ACTIVATION });
  }
  const redis = connection as Redis & NoticeCommands;
  return {
    async send(job) {
      try {
        await queue.add(job.kind, job, smsJobOptions(job));
      } catch (error) {
        throw unavailable(error);
      }
    },
    async noticeInviter({ inviterId, to, inviteCode, invitedCount, windowSeconds, now }) {
      const windowMs = windowSeconds * 1000;
      const job: InviteDigestSmsJob = {
        kind: 'invite_digest',
        inviterId,
        to,
        expiresAt: now + windowMs + NOTICE_LIFETIME_MS,
      };
      try {
        const recorded = redis.recordInviteActivation(
          pendingNoticeKey(redisKeyPrefix, inviterId),
          invitedCount,
          inviteCode,
          windowMs + NOTICE_LIFETIME_MS,
        );
        // A job that runs at once must find the count; a delayed one runs at the window's end, so
        // both go in one round trip. A job that finds no count (it failed) sends nothing.
        if (windowMs === 0) await recorded;
        // While the window's job waits, later activations add no job: the deduplication key lives
        // as long as the window, and the job runs at its end and takes every count added meanwhile.
        const queued = queue.add(job.kind, job, {
          ...smsJobOptions(job, now),
          ...(windowMs > 0 ? { delay: windowMs, deduplication: { id: `notice:${inviterId}`, ttl: windowMs } } : {}),
        });
        await Promise.all([recorded, queued]);
      } catch (error) {
        throw unavailable(error);
      }
    },
    async forgetInviter(inviterId) {
      try {
        await redis.del(pendingNoticeKey(redisKeyPrefix, inviterId));
        const jobId = await queue.getDeduplicationJobId(`notice:${inviterId}`);
        const job = jobId ? await queue.getJob(jobId) : undefined;
        // A job a worker holds already finds no pending count and sends nothing.
        await job?.remove().catch(() => undefined);
      } catch (error) {
        throw unavailable(error);
      }
    },
    async close() {
      await queue.close();
      if (own) await closeRedis(own);
    },
  };
}
