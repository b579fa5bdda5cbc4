import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { closeRedis, type RedisClient as Redis } from './redis.js';
import { AppError } from '../contracts/errors.js';
import {
  INVITER_EPOCH_KEEP_MS,
  inviterEpochKey,
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
   * end of the window; a Redis failure becomes a 503 problem. True when this activation opened the
   * window, so that the queued notice goes to the `to` it carries.
   */
  noticeInviter(activation: InviteActivation): Promise<boolean>;
  /** Drops an inviter's pending notice (the account was deleted or moved to another number). */
  forgetInviter(inviterId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Adds one activation to an inviter's pending notice: the count since the last notice, the
 * highest invitee count seen (activations may be counted out of order) and the code. Kept until a
 * notice could still be worth sending. KEYS: the inviter's pending hash. ARGV: the invitee count,
 * the code, how long to keep the hash, the window (ms).
 *
 * It also decides whether this activation queues the window's job: only when none was queued for
 * the pending count within the window (`queued`, Redis's clock). The worker takes the whole hash,
 * so the first activation after a notice queues the next one; a count left behind (a spent budget,
 * a job that failed for good) gets a new job from the first activation after the window. Answers
 * the stamp it set, or 0 when a job is already on its way, and the inviter's notice epoch (KEYS[2])
 * for the job: a job queued before the inviter moved or deleted the account takes no count after.
 */
const RECORD_ACTIVATION = `
redis.call('HINCRBY', KEYS[1], 'n', 1)
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if tonumber(ARGV[1]) > total then redis.call('HSET', KEYS[1], 'total', ARGV[1]) end
redis.call('HSET', KEYS[1], 'code', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local queued = tonumber(redis.call('HGET', KEYS[1], 'queued') or '-1')
if queued >= 0 and now - queued < tonumber(ARGV[4]) then return {0, ''} end
redis.call('HSET', KEYS[1], 'queued', now)
return {now, redis.call('GET', KEYS[2]) or '0'}
`;

/** Lets the next activation queue the job again, unless another has since. ARGV: the stamp. */
const REOPEN_NOTICE = `
if redis.call('HGET', KEYS[1], 'queued') == ARGV[1] then redis.call('HDEL', KEYS[1], 'queued') end
return 1
`;

/**
 * Drops the pending count and moves the inviter's epoch on, so that a notice already taken (its
 * job being retried while providers fail) is not sent to the number the account left.
 */
const FORGET_INVITER = `
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
return 1
`;

interface NoticeCommands {
  recordInviteActivation(
    key: string,
    epochKey: string,
    total: number,
    code: string,
    ttlMs: number,
    windowMs: number,
  ): Promise<[number, string]>;
  reopenInviteNotice(key: string, stamp: number): Promise<number>;
  forgetInviteNotices(key: string, epochKey: string, keepMs: number, epoch: string): Promise<number>;
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
  // The count goes where its job goes, and like the job it may wait while the connection reconnects.
  if (!('recordInviteActivation' in connection)) {
    connection.defineCommand('recordInviteActivation', { numberOfKeys: 2, lua: RECORD_ACTIVATION });
    connection.defineCommand('reopenInviteNotice', { numberOfKeys: 1, lua: REOPEN_NOTICE });
    connection.defineCommand('forgetInviteNotices', { numberOfKeys: 2, lua: FORGET_INVITER });
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
      const key = pendingNoticeKey(redisKeyPrefix, inviterId);
      let stamp = 0;
      try {
        // A job that runs at once must find the count, so the count goes first; while the
        // window's job waits, later activations only count.
        const [set, noticeEpoch] = await redis.recordInviteActivation(
          key,
          inviterEpochKey(redisKeyPrefix, inviterId),
          invitedCount,
          inviteCode,
          windowMs + NOTICE_LIFETIME_MS,
          windowMs,
        );
        stamp = set;
        if (stamp === 0) return false;
        const job: InviteDigestSmsJob = {
          kind: 'invite_digest',
          inviterId,
          to,
          expiresAt: now + windowMs + NOTICE_LIFETIME_MS,
          noticeEpoch,
        };
        if (windowMs === 0) {
          await queue.add(job.kind, job, smsJobOptions(job, now));
          return true;
        }
        // The deduplication key stays the second guard, and lets forgetInviter find the job.
        const jobId = `notice-${inviterId}-${stamp}`;
        const queued = await queue.add(job.kind, job, {
          ...smsJobOptions(job, now),
          jobId,
          delay: windowMs,
          deduplication: { id: `notice:${inviterId}`, ttl: windowMs },
        });
        // Deduplicated: the earlier window's job is still queued by BullMQ's clock, but it may have
        // taken the count before this one, so the next activation tries again.
        if (queued.id !== jobId) await redis.reopenInviteNotice(key, stamp);
        return true;
      } catch (error) {
        if (stamp !== 0) await redis.reopenInviteNotice(key, stamp).catch(() => undefined);
        throw unavailable(error);
      }
    },
    async forgetInviter(inviterId) {
      try {
        await redis.forgetInviteNotices(
          pendingNoticeKey(redisKeyPrefix, inviterId),
          inviterEpochKey(redisKeyPrefix, inviterId),
          INVITER_EPOCH_KEEP_MS,
          // A new random epoch, not a count: one that outlived its key could never come round again.
          randomUUID(),
        );
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
