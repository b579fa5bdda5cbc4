import {
  AppError,
  type ChangePhoneResult,
  type DeleteResult,
  type InternalUser,
  type ReferralExport,
} from '@refstack/shared/contracts';
import type { Revocation, SmsQueue } from '@refstack/shared/platform';
import type { Kysely } from 'kysely';
import { Deadline } from '../db/deadline.js';
import { isLive, type Database, type LiveUserRow, type UserRow } from '../db/schema.js';
import { isUniqueViolation, serializable } from '../db/transaction.js';
import type { ActivationDeadlines } from '../invites/invite-service.js';
import { lockPair, rewriteInviteeList } from '../invites/invite-repository.js';
import { isBigintId } from '../paging/cursor.js';
import { accountBlocked, statusOf } from './account-status.js';
import { toProfile } from './profile-mapper.js';
import * as repo from './user-repository.js';

/**
 * An account over its lifetime, beside sign-in and invites: what auth asks referral for when a user
 * changes phone, deletes the account or exports their data, and the admins' block. Phone changes
 * and deletions rewrite the inviter's embedded list, so they follow the activation's discipline
 * (../invites/README.md): queued on the inviter's advisory lock, SERIALIZABLE with retries, row
 * locks in id order, the constraints last.
 */

/** Where revocations go: Revocations in the service, which every token verifier listens to. */
export interface RevocationPublisher {
  publish(revocations: readonly Revocation[]): Promise<void>;
}

export interface AccountServiceDeps {
  db: Kysely<Database>;
  revocations: RevocationPublisher;
  /** Auth's account calls wait as long as its sign-in does: `signInMs` bounds them. */
  deadlines: ActivationDeadlines;
  /** Holds the pending notices to inviters, which name the phone they go to. */
  sms: Pick<SmsQueue, 'forgetInviter'>;
  log: { warn(obj: object, msg: string): void };
}

function notFound(): AppError {
  return new AppError('not_found', 'No such user.');
}

function phoneTaken(): AppError {
  return new AppError('phone_taken', 'Another account has this phone number.');
}

/** The account a change applies to: a deleted one is not found, a blocked one is refused. */
function requireChangeable(row: UserRow | undefined): LiveUserRow {
  if (!row || !isLive(row)) throw notFound();
  if (row.blocked_at !== null) throw accountBlocked();
  return row;
}

/**
 * Blocks the account with this id or phone and ends every access token it holds: the revocation
 * covers tokens issued up to now, and a blocked account is issued none (sign-in and refresh refuse
 * it), so unblocking later leaves the old tokens refused. The account's id, or undefined when there
 * is none that is not deleted. Published after the write: a failed publish answers an error, and
 * the block, repeated, publishes again.
 */
export async function blockAccount(
  db: Kysely<Database>,
  revocations: RevocationPublisher,
  who: { id: string } | { phone: string },
): Promise<string | undefined> {
  // The real clock, not the service's: it is compared with the iat and auth_time auth wrote by its own.
  const before = Math.floor(Date.now() / 1000);
  // The row keeps the time (revoked_before) for the sessions of auth instances that miss the announcement.
  const id = await repo.setBlocked(db, who, { before });
  if (id !== undefined) await revocations.publish([{ sub: id, before }]);
  return id;
}

export function accountServiceFactory({ db, revocations, deadlines, sms, log }: AccountServiceDeps) {
  /**
   * After commit: a notice of activations pending for this user was meant for a phone that is no
   * longer theirs (or anyone's). Best effort, like the notice itself: the change stands regardless.
   */
  async function forgetPendingNotice(id: string): Promise<void> {
    try {
      await sms.forgetInviter(id);
    } catch (error) {
      log.warn({ reason: (error as Error).message, inviter_id: id }, 'pending inviter notice not dropped');
    }
  }

  return {
    /** What auth re-reads on a refresh: an id that never existed is not found; a tombstone is `deleted`. */
    async internalUser(id: string): Promise<InternalUser> {
      const row = isBigintId(id) ? await repo.findById(db, id) : undefined;
      if (!row) throw notFound();
      return {
        id: row.id,
        phone: row.phone,
        roles: row.is_admin ? ['admin'] : [],
        status: statusOf(row),
        revoked_before: row.revoked_before ? Math.floor(row.revoked_before.getTime() / 1000) : null,
      };
    },

    /**
     * Moves the account to a new phone, keeping its id, invite code and relations; the inviter's
     * embedded list shows the new number from the same commit. When two accounts race for one number
     * the phone's unique constraint lets exactly one commit; the other hears `phone_taken`.
     */
    async changePhone(id: string, phone: string): Promise<ChangePhoneResult> {
      // From the first read: auth's wait is built around this bound, reads waiting for a connection included.
      const deadline = Deadline.in(deadlines.signInMs);
      const seen = requireChangeable(isBigintId(id) ? await deadline.race(repo.findById(db, id)) : undefined);
      if (seen.phone === phone) return { user: toProfile(seen), old_phone: phone };
      // Refused without the inviter's lock when the number is plainly someone else's.
      const holder = await deadline.race(repo.findByPhone(db, phone));
      if (holder && holder.id !== id) throw phoneTaken();
      let result: ChangePhoneResult;
      try {
        result = await deadline.race(
          serializable(
            db,
            async (trx): Promise<ChangePhoneResult> => {
              const user = requireChangeable(await repo.findById(trx, id));
              if (user.phone === phone) return { user: toProfile(user), old_phone: phone };
              const inviterId = user.invited_by_id;
              await lockPair(trx, user.id, inviterId ?? user.id);
              const changed = await repo.setPhone(trx, id, phone);
              if (inviterId !== null) await rewriteInviteeList(trx, inviterId);
              return { user: toProfile(changed), old_phone: user.phone };
            },
            { queueOn: seen.invited_by_id === null ? [] : [seen.invited_by_id], deadline },
          ),
        );
      } catch (error) {
        if (isUniqueViolation(error, 'users_phone_key')) throw phoneTaken();
        throw error;
      }
      if (result.old_phone !== phone) await forgetPendingNotice(id);
      return result;
    },

    /**
     * Erases the account: phone, names and email go in one write, and the row stays as an anonymous
     * tombstone in the invite graph. Its inviter keeps the count and sees null in its list (rewritten
     * in the same transaction); its invitees keep their activation; its code is not found from the
     * commit on. Queued on its own lock, so activations of its code that wait behind the deletion
     * then see it, and on its inviter's, whose list it rewrites. A blocked account is refused
     * (`account_blocked`), as a phone change is: deleting it would free its number for a new one.
     */
    async deleteAccount(id: string): Promise<DeleteResult> {
      const deadline = Deadline.in(deadlines.signInMs);
      const seen = requireChangeable(isBigintId(id) ? await deadline.race(repo.findById(db, id)) : undefined);
      const result = await deadline.race(
        serializable(
          db,
          async (trx): Promise<DeleteResult> => {
            // Checked again in the transaction: auth checked the status before it called, and a block
            // landing since must not let the user erase the account and sign up afresh, unblocked.
            // A block committed after this read makes the erase fail serialization and run again.
            const user = requireChangeable(await repo.findById(trx, id));
            const inviterId = user.invited_by_id;
            await lockPair(trx, user.id, inviterId ?? user.id);
            await repo.erase(trx, id);
            if (inviterId !== null) await rewriteInviteeList(trx, inviterId);
            return { old_phone: user.phone };
          },
          { queueOn: seen.invited_by_id === null ? [id] : [id, seen.invited_by_id], deadline },
        ),
      );
      await forgetPendingNotice(id);
      return result;
    },

    /**
     * The account's data as referral holds it, for the user's own export: the profile as the user
     * sees it, and every invitee by id and time. Both reads see one snapshot, so the count in the
     * profile and the list agree even while someone activates the user's code.
     */
    async exportAccount(id: string): Promise<ReferralExport> {
      if (!isBigintId(id)) throw notFound();
      const { row, invitees } = await db
        .transaction()
        .setIsolationLevel('repeatable read')
        .setAccessMode('read only')
        .execute(async (trx) => {
          const found = await repo.findById(trx, id);
          return { row: found, invitees: found && isLive(found) ? await repo.inviteesForExport(trx, id) : [] };
        });
      if (!row || !isLive(row)) throw notFound();
      const activation =
        row.invited_by_id !== null && row.activated_invite_code !== null && row.activated_at !== null
          ? {
              invite_code: row.activated_invite_code,
              inviter_id: row.invited_by_id,
              activated_at: row.activated_at.toISOString(),
            }
          : null;
      return {
        profile: toProfile(row),
        activation,
        invitees,
        is_admin: row.is_admin,
        updated_at: row.updated_at.toISOString(),
      };
    },

    /** An admin's block (see blockAccount); a deleted or unknown id is not found. Blocking again is a no-op. */
    async block(id: string): Promise<void> {
      if (!isBigintId(id) || (await blockAccount(db, revocations, { id })) === undefined) throw notFound();
    },

    /** Lifts a block: new sign-ins work again; tokens from before the block stay revoked. */
    async unblock(id: string): Promise<void> {
      if (!isBigintId(id) || (await repo.setBlocked(db, { id }, false)) === undefined) throw notFound();
    },
  };
}

export type AccountService = ReturnType<typeof accountServiceFactory>;
