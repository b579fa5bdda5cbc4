import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import {
  inviterEpochKey,
  pendingNoticeKey,
  phoneCountry,
  type InviteDigestSmsJob,
  type InviteNoticeSmsJob,
} from '@refstack/shared/contracts';
import type { SmsBudgetCounter } from '../guard/budget.js';

/** Takes an inviter's pending activations at once, so each is reported by exactly one notice. */
const TAKE = `
local epoch = redis.call('GET', KEYS[2]) or '0'
if ARGV[1] ~= '' and ARGV[1] ~= epoch then return {'stale'} end
local pending = redis.call('HMGET', KEYS[1], 'n', 'total', 'code')
redis.call('DEL', KEYS[1])
pending[4] = epoch
return pending
`;

interface DigestCommands {
  /** The count, the total, the code and the epoch; or ['stale'] for a job queued under an earlier epoch. */
  takeInviteNotice(
    key: string,
    epochKey: string,
    jobEpoch: string,
  ): Promise<[string | null, string | null, string | null, string] | ['stale']>;
}

export type DigestOutcome = InviteNoticeSmsJob | 'nothing_pending' | 'budget_exhausted' | 'inviter_gone';

/**
 * Turns an inviter's window into one notice: how many activated the code since the last notice,
 * and how many in all. The notice is counted in the day's budget before the count is taken, so a
 * spent budget leaves the count for the next window.
 */
export class InviteDigests {
  private readonly redis: Redis & DigestCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly budget: SmsBudgetCounter,
  ) {
    if (!('takeInviteNotice' in redis)) redis.defineCommand('takeInviteNotice', { numberOfKeys: 2, lua: TAKE });
    this.redis = redis as Redis & DigestCommands;
  }

  async take(job: InviteDigestSmsJob, now: number): Promise<DigestOutcome> {
    const key = pendingNoticeKey(this.prefix, job.inviterId);
    if ((await this.redis.exists(key)) === 0) return 'nothing_pending';
    const spend = await this.budget.reserve(phoneCountry(job.to), now);
    if (!spend.allowed) return 'budget_exhausted';
    const taken = await this.redis.takeInviteNotice(
      key,
      inviterEpochKey(this.prefix, job.inviterId),
      job.noticeEpoch ?? '',
    );
    // Queued before the inviter moved or deleted the account: the count is a later one's, for the
    // number the account has now, and stays for that one's own job.
    if (taken[0] === 'stale') {
      await spend.release();
      return 'inviter_gone';
    }
    const [count, total, code, epoch] = taken;
    if (!count || Number(count) <= 0 || !code) {
      await spend.release();
      return 'nothing_pending';
    }
    return {
      kind: 'invite_activated',
      to: job.to,
      inviteCode: code,
      invitedCount: Number(total ?? count),
      newCount: Number(count),
      inviterId: job.inviterId,
      noticeEpoch: epoch,
      expiresAt: job.expiresAt,
      ...(job.locale ? { locale: job.locale } : {}),
    };
  }

  /** Whether a notice taken under `epoch` is still for the inviter's number (not moved or deleted since). */
  async stillTheirs(inviterId: string, epoch: string): Promise<boolean> {
    return ((await this.redis.get(inviterEpochKey(this.prefix, inviterId))) ?? '0') === epoch;
  }
}
