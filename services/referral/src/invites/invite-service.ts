import { AppError, referralWorkMs, requireInviteCode, type Config } from '@refstack/shared/contracts';
import { type SmsQueue } from '@refstack/shared/platform';
import type { Kysely } from 'kysely';
import type { HeldConnection } from '../db/database.js';
import { Deadline } from '../db/deadline.js';
import { sharedStatement } from '../db/shared-statement.js';
import type { Database, LiveUserRow, UserRow } from '../db/schema.js';
import { queuedStatement, queuedTransaction } from '../db/transaction.js';
import { decodeCursor, encodeCursor, isBigintId, isPgTimestamp } from '../paging/cursor.js';
import { accountBlocked, requireActive, requireStatusActive, userGone } from '../users/account-status.js';
import { findById, type Db } from '../users/user-repository.js';
import * as repo from './invite-repository.js';

/**
 * Invite activation: once per user, never one's own code, never a cycle, also when activations
 * race (README.md beside this file names each layer that keeps it so, and its test), then a notice
 * to the inviter. Also the inviter's side: the pages of who activated a code.
 */

export interface ActivationDeadlines {
  /** A sign-in that carries an invite code (auth's internal call). */
  signInMs: number;
  /** PUT /profile/invite (through the gateway). */
  activateMs: number;
}

/**
 * How long an activation has from its start to answer; past it the answer is 503 and nothing was
 * applied. Each is inside its caller's own limit, so the caller always hears the outcome: auth gives
 * up on referral after REFERRAL_TIMEOUT_MS and needs a moment to give the code back; the gateway
 * gives up after UPSTREAM_TIMEOUT_MS, and fetching unknown keys (up to 4 s) or a commit already
 * under way at the deadline come on top of the activation's own time.
 */
export function activationDeadlines(
  config: Pick<Config, 'referralTimeoutMs' | 'upstreamTimeoutMs'>,
): ActivationDeadlines {
  return {
    signInMs: referralWorkMs(config.referralTimeoutMs),
    activateMs: Math.max(1000, config.upstreamTimeoutMs - 5000),
  };
}

export interface InviteServiceDeps {
  db: Kysely<Database>;
  sms: SmsQueue;
  log: { warn(obj: object, msg: string): void };
  deadlines: ActivationDeadlines;
  /** INVITE_NOTICE_WINDOW_SECONDS: an inviter hears of activations at most once per window. */
  noticeWindowSeconds: number;
  /** Milliseconds since the epoch. */
  now: () => number;
}

type Activation = {
  status: 'activated' | 'already';
  inviter?: { id: string; phone: string; invitedCount: number };
  code: string;
};

/**
 * A write on the activating user's own row that must stand or fall with the activation: it runs in
 * the activation's transaction (or alone, for a repeat, which writes nothing else), after the
 * rules have passed, so a refused invite leaves it unapplied and a failure of it undoes the invite.
 */
export type AlongsideActivation = (q: Db) => Promise<void>;

/** How a sign-in finds or creates its user inside the activation's transaction. */
export type UserOfPhone = (q: Db, phone: string) => Promise<{ user: UserRow; created: boolean }>;

/** Another code than the one the user activated; null when the activated code is not known here. */
function alreadyActivated(activatedCode: string | null): AppError {
  const which = activatedCode === null ? '' : ` (${activatedCode})`;
  return new AppError(
    'invite_already_activated',
    `An invite code${which} is already activated; it can be activated only once.`,
  );
}

/** A user who activated a code already: the same code again is a repeat (200), another is refused. */
function isRepeat(user: UserRow | undefined, code: string): boolean {
  if (!user || user.invited_by_id === null) return false;
  if (user.activated_invite_code === code) return true;
  throw alreadyActivated(user.activated_invite_code);
}

function inviteNotFound(): AppError {
  return new AppError('invite_not_found', 'No user has this invite code.');
}

function inviteSelf(): AppError {
  return new AppError('invite_self', 'You cannot activate your own invite code.');
}

/** The owner of the code, who must exist and be someone else. */
function requireInviter<I extends { id: string }>(user: UserRow | undefined, inviter: I | undefined): I {
  if (!inviter) throw inviteNotFound();
  if (inviter.id === user?.id) throw inviteSelf();
  return inviter;
}

export function inviteServiceFactory({ db, sms, log, deadlines, noticeWindowSeconds, now }: InviteServiceDeps) {
  /** Invitee pages asked for together share one statement (see sharedStatement). */
  const inviteePages = sharedStatement<repo.InviteePageRequest, repo.InviteePage>(
    (requests) => repo.readInviteePages(db, requests),
    async (request) => (await repo.readInviteePages(db, [request]))[0]!,
    32,
  );

  /**
   * The activation rules, alone or in the caller's transaction: once per user (the same
   * code again is a no-op), never one's own code, never a code whose owner sits below the user in
   * the invite tree. The database function takes the steps; this words its refusals.
   */
  async function activate(
    q: Db | HeldConnection,
    userId: string,
    code: string,
    lockWaitMs: number,
  ): Promise<Activation> {
    const done = await repo.activateInvite(q, userId, code, lockWaitMs);
    switch (done.outcome) {
      case 'activated':
        return {
          status: 'activated',
          inviter: { id: done.inviterId, phone: done.inviterPhone, invitedCount: done.invitedCount },
          code,
        };
      case 'already':
        return { status: 'already', code };
      case 'other_code':
        throw alreadyActivated(done.activatedCode);
      case 'gone':
        throw userGone();
      case 'blocked':
        throw accountBlocked();
      case 'not_found':
        throw inviteNotFound();
      case 'self':
        throw inviteSelf();
      case 'cycle':
        throw new AppError(
          'invite_cycle',
          'This code belongs to someone you invited (directly or further down); invites cannot form a cycle.',
        );
    }
  }

  /** After commit only: a failed enqueue is logged and never undoes the activation. */
  async function notifyInviter(activation: Activation): Promise<void> {
    if (activation.status !== 'activated' || !activation.inviter) return;
    const { id, phone, invitedCount } = activation.inviter;
    try {
      // Coalesced per inviter: a code shared widely must not send its owner an SMS per activation.
      // The worker writes the text, in the language of the inviter's number.
      const opened = await sms.noticeInviter({
        inviterId: id,
        to: phone,
        inviteCode: activation.code,
        invitedCount,
        windowSeconds: noticeWindowSeconds,
        now: now(),
      });
      // The inviter may have been deleted or moved to another number since this activation read
      // the phone: that change forgets pending notices after its commit, and one queued after that
      // would text a number the account no longer has. Read after queuing, so that either this
      // read sees the change or the change's forget comes after the queued notice. Only the
      // activation that opens a window pays for it.
      if (opened) {
        const current = await findById(db, id);
        if (current?.phone !== phone) await sms.forgetInviter(id);
      }
    } catch (error) {
      log.warn(
        { reason: (error as Error).message, inviter_id: activation.inviter.id },
        'inviter notification not queued',
      );
    }
  }

  /**
   * The inviter's notice, waited for only while the deadline lasts: the answer is promised within
   * it (auth's wait is built around that), and a bus whose Redis stalls (each command may take
   * 2 s) must not turn a committed activation into the caller's timeout. A notice still under way
   * then goes on by itself and logs its own failure.
   */
  async function notifyWithin(activation: Activation, deadline: Deadline): Promise<void> {
    const notice = notifyInviter(activation);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([notice, new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline.remainingMs())))]);
    clearTimeout(timer);
  }

  return {
    /**
     * A sign-in that carries an invite code: the user is found or created in the activation's own
     * transaction, so a refused invite writes nothing, not even the new user.
     */
    async activateAtSignIn(
      phone: string,
      inviteCode: string,
      userOfPhone: UserOfPhone,
    ): Promise<{ row: LiveUserRow; created: boolean }> {
      const code = requireInviteCode(inviteCode);
      const deadline = Deadline.in(deadlines.signInMs);
      const outcome = await deadline.race(
        (async (): Promise<{ row: LiveUserRow; created: boolean; activation?: Activation }> => {
          // Answered from a plain read when it can be (see activateInvite); a first sign-in has no row yet.
          const seen = await repo.findWithInviter(db, { phone }, code);
          // A blocked user is refused before anything about the code is said.
          const known = seen.user && requireActive(seen.user);
          if (known && isRepeat(known, code)) return { row: known, created: false };
          requireInviter(seen.user, seen.inviter);
          return queuedTransaction(db, deadline, async (trx, lockWaitMs) => {
            const { user, created } = await userOfPhone(trx, phone);
            const activation = await activate(trx, requireActive(user).id, code, lockWaitMs);
            const row = requireActive(await findById(trx, user.id));
            return { row, created, activation };
          });
        })(),
      );
      if (outcome.activation) await notifyWithin(outcome.activation, deadline);
      return { row: outcome.row, created: outcome.created };
    },

    /** PUT /profile/invite; with `alongside`, also the profile changes of PATCH users/current_user. */
    async activate(
      userId: string,
      inviteCode: string,
      alongside?: AlongsideActivation,
    ): Promise<{ status: 'activated'; activated_invite_code: string }> {
      const code = requireInviteCode(inviteCode);
      const deadline = Deadline.in(deadlines.activateMs);
      const { activation, alongsideApplied } = await deadline.race(
        (async (): Promise<{ activation: Activation; alongsideApplied: boolean }> => {
          // Alone, the activation is one statement, which answers a repeat and the refusals from
          // reads it makes before it queues on the inviter's lock.
          if (!alongside) {
            const done = await queuedStatement(db, deadline, (on, lockWaitMs) =>
              activate(on, userId, code, lockWaitMs),
            );
            return { activation: done, alongsideApplied: true };
          }
          // A repeat and the refusals are answered from this plain read, without the inviter's lock
          // or a transaction: answers that change nothing must not queue, or one user repeating a
          // request could park every pooled connection behind a busy inviter. The transaction
          // checks all of it again.
          const seen = await repo.findWithInviter(db, { id: userId }, code);
          if (isRepeat(requireActive(seen.user), code))
            return { activation: { status: 'already', code }, alongsideApplied: false };
          requireInviter(seen.user, seen.inviter);
          return queuedTransaction(db, deadline, async (trx, lockWaitMs) => {
            const done = await activate(trx, userId, code, lockWaitMs);
            await alongside(trx);
            return { activation: done, alongsideApplied: true };
          });
        })(),
      );
      // A repeat answered from the plain read has nothing to write but this, one statement atomic
      // on its own. It runs after the race, not in it: a 503 by the deadline must mean nothing was
      // applied, which a statement still running when the deadline passed could not promise.
      if (!alongsideApplied) await alongside?.(db);
      // After commit: the activation stands whatever the bus does.
      await notifyWithin(activation, deadline);
      return { status: 'activated', activated_invite_code: activation.code };
    },

    /**
     * The ids and phones of the newest EMBEDDED_INVITEES invitees, in the invitee index's order: the
     * profile's embedded list with ids, read as the first invitee page (one index-only scan). A
     * deleted invitee's phone is null.
     */
    async newestInvitees(userId: string): Promise<Array<{ id: string; phone: string | null }>> {
      const { status, rows } = await inviteePages.load({ inviterId: userId, limit: repo.EMBEDDED_INVITEES });
      requireStatusActive(status);
      return rows.map((r) => ({ id: r.id, phone: r.phone }));
    },

    async invitees(userId: string, limit: number, cursor?: string) {
      const after = cursor ? decodeCursor(cursor, 2, ([at, id]) => isPgTimestamp(at) && isBigintId(id)) : undefined;
      const { total, status, rows } = await inviteePages.load({
        inviterId: userId,
        limit: limit + 1,
        ...(after ? { after: { activatedAt: after[0] as string, id: after[1] as string } } : {}),
      });
      requireStatusActive(status);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        items: page.map((r) => ({ id: r.id, phone: r.phone, activated_at: r.activated_at })),
        next_cursor: rows.length > limit && last ? encodeCursor([last.activated_at_key, last.id]) : null,
        total: total ?? 0,
      };
    },
  };
}

export type InviteService = ReturnType<typeof inviteServiceFactory>;
