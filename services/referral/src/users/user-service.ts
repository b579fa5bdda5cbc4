import { AppError, generateInviteCode, NOTICE_LIFETIME_MS, parseInviteCode, type Config, type Profile, type SmsQueue } from '@refstack/shared';
import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { Database, UserRow } from '../db/schema.js';
import { Deadline } from '../db/deadline.js';
import { isUniqueViolation, serializable } from '../db/transaction.js';
import { decodeCursor, isBigintId, isPgTimestamp, encodeCursor } from './cursor.js';
import { toListItem, toProfile, toPublicCard, type ProfileListItem, type PublicCard } from './profile-mapper.js';
import * as repo from './user-repository.js';

export interface UserServiceDeps {
  db: Kysely<Database>;
  sms: SmsQueue;
  log: { warn(obj: object, msg: string): void };
  deadlines: ActivationDeadlines;
}

type Activation = { status: 'activated' | 'already'; inviter?: { id: string; phone: string; invitedCount: number }; code: string };

const INSERT_ATTEMPTS = 5;

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
export function activationDeadlines(config: Pick<Config, 'referralTimeoutMs' | 'upstreamTimeoutMs'>): ActivationDeadlines {
  return {
    signInMs: Math.max(1000, config.referralTimeoutMs - 1000),
    activateMs: Math.max(1000, config.upstreamTimeoutMs - 5000),
  };
}

function notFound(): AppError {
  return new AppError('not_found', 'No such user.');
}

function userGone(): AppError {
  return new AppError('unauthorized', 'The user of this token no longer exists.');
}

function parseCode(input: string): string {
  const code = parseInviteCode(input);
  if (code === null) {
    const message = 'must be 6 letters or digits';
    throw new AppError('validation_failed', `invite_code ${message}`, { errors: [{ field: 'invite_code', message }] });
  }
  return code;
}

/** A user who activated a code already: the same code again is a repeat (200), another is refused. */
function isRepeat(user: UserRow | undefined, code: string): boolean {
  if (!user || user.invited_by_id === null) return false;
  if (user.activated_invite_code === code) return true;
  throw new AppError('invite_already_activated', `An invite code (${user.activated_invite_code}) is already activated; it can be activated only once.`);
}

/** The owner of the code, who must exist and be someone else. */
function requireInviter<I extends { id: string }>(user: UserRow | undefined, inviter: I | undefined): I {
  if (!inviter) throw new AppError('invite_not_found', 'No user has this invite code.');
  if (inviter.id === user?.id) throw new AppError('invite_self', 'You cannot activate your own invite code.');
  return inviter;
}

export function userServiceFactory({ db, sms, log, deadlines }: UserServiceDeps) {
  /**
   * Profile reads that arrive in the same turn of the event loop share one statement: under load a
   * round trip to PostgreSQL (a write, a wake-up on either side, a protocol exchange) costs more
   * than the read itself. At idle a batch holds one read and waits for nothing but the current
   * turn. No cache: every read sees the database as it is.
   */
  const profileDocuments = new DataLoader<string, string | undefined>((ids) => repo.readProfileJsons(db, ids), {
    cache: false,
    maxBatchSize: 100,
    batchScheduleFn: (dispatch) => setImmediate(dispatch),
  });

  /**
   * The activation rules, inside the caller's serializable transaction: once per user (the same
   * code again is a no-op), never one's own code, never a code whose owner sits below the user in
   * the invite tree. The conditional write is the last guard against a concurrent activation.
   */
  async function activate(trx: repo.Db, user: UserRow, code: string): Promise<Activation> {
    if (isRepeat(user, code)) return { status: 'already', code };
    const inviter = requireInviter(user, await repo.findIdByInviteCode(trx, code));
    await repo.lockPair(trx, user.id, inviter.id);
    // Only a user with invitees can sit above the inviter; the narrow check keeps the serializable
    // read set small, so unrelated activations do not conflict with each other.
    if ((await repo.hasInvitees(trx, user.id)) && (await repo.isAncestor(trx, user.id, inviter.id))) {
      throw new AppError('invite_cycle', 'This code belongs to someone you invited (directly or further down); invites cannot form a cycle.');
    }
    if (!(await repo.setInviter(trx, user.id, inviter.id, code))) {
      throw new AppError('invite_already_activated', 'An invite code is already activated; it can be activated only once.');
    }
    const invitedCount = await repo.recordInvitee(trx, inviter.id, user.phone);
    return { status: 'activated', inviter: { id: inviter.id, phone: inviter.phone, invitedCount }, code };
  }

  /** After commit only: a failed enqueue is logged and never undoes the activation. */
  async function notifyInviter(activation: Activation): Promise<void> {
    if (activation.status !== 'activated' || !activation.inviter) return;
    const { phone, invitedCount } = activation.inviter;
    const people = invitedCount === 1 ? '1 person has' : `${invitedCount} people have`;
    try {
      await sms.send({
        kind: 'invite_activated',
        to: phone,
        text: `Someone just activated your invite code ${activation.code}. ${people} joined with it so far.`,
        expiresAt: Date.now() + NOTICE_LIFETIME_MS,
      });
    } catch (error) {
      log.warn({ reason: (error as Error).message, inviter_id: activation.inviter.id }, 'inviter notification not queued');
    }
  }

  /**
   * The user of this phone, inserted with a fresh invite code if there is none. An insert that
   * finds the phone taken waits for the other sign-in to commit, so the lookup after it sees that
   * user (in a serializable transaction PostgreSQL raises a retryable conflict instead).
   */
  async function findOrCreateUser(q: repo.Db, phone: string): Promise<{ user: UserRow; created: boolean }> {
    let user = await repo.findByPhone(q, phone);
    for (let attempt = 0; !user && attempt < INSERT_ATTEMPTS; attempt += 1) {
      const inserted = await repo.insertUser(q, phone, generateInviteCode());
      if (inserted) return { user: inserted, created: true };
      // No row: another sign-in took the phone (found now) or the invite code collided (try another).
      user = await repo.findByPhone(q, phone);
    }
    if (!user) throw new Error('could not allocate a unique invite code');
    return { user, created: false };
  }

  async function profileOf(userId: string): Promise<Profile> {
    const row = await repo.readProfile(db, userId);
    if (!row) throw userGone();
    return toProfile(row);
  }

  return {
    /**
     * Finds or creates the user of a verified phone and applies an invite in the same transaction:
     * if the invite is refused, nothing is written (not even a new user).
     */
    async signIn(phone: string, inviteCode?: string): Promise<{ user: Profile; created: boolean; roles: string[] }> {
      if (!inviteCode) {
        // Without an invite nothing depends on rows other than the user's own, and the unique
        // constraints settle concurrent first sign-ins: no serializable transaction, so sign-ins
        // of neighbouring phones never fail each other's snapshots and retry.
        const { user, created } = await findOrCreateUser(db, phone);
        return { user: toProfile(user), created, roles: user.is_admin ? ['admin'] : [] };
      }
      const code = parseCode(inviteCode);
      const deadline = Deadline.in(deadlines.signInMs);
      const outcome = await deadline.race((async (): Promise<{ row: UserRow; created: boolean; activation?: Activation }> => {
        // Answered from a plain read when it can be (see activateInvite); a first sign-in has no row yet.
        const seen = await repo.findWithInviter(db, { phone }, code);
        if (seen.user && isRepeat(seen.user, code)) return { row: seen.user, created: false };
        const inviter = requireInviter(seen.user, seen.inviter);
        return serializable(db, async (trx) => {
          const { user, created } = await findOrCreateUser(trx, phone);
          const activation = await activate(trx, user, code);
          const row = await repo.findById(trx, user.id);
          if (!row) throw new Error('user vanished inside its own transaction');
          return { row, created, activation };
        }, { queueOn: [inviter.id], deadline });
      })());
      if (outcome.activation) await notifyInviter(outcome.activation);
      return { user: toProfile(outcome.row), created: outcome.created, roles: outcome.row.is_admin ? ['admin'] : [] };
    },

    profile: profileOf,

    /** The profile as its JSON answer, for GET /profile. */
    async profileJson(userId: string): Promise<string> {
      const document = await profileDocuments.load(userId);
      if (document === undefined) throw new AppError('unauthorized', 'The user of this token no longer exists.');
      return document;
    },

    async activateInvite(userId: string, inviteCode: string): Promise<{ status: 'activated'; activated_invite_code: string }> {
      const code = parseCode(inviteCode);
      const deadline = Deadline.in(deadlines.activateMs);
      const activation = await deadline.race((async (): Promise<Activation> => {
        // A repeat and the refusals are answered from this plain read, without the inviter's lock
        // or a transaction: answers that change nothing must not queue, or one user repeating a
        // request could park every pooled connection behind a busy inviter. The transaction
        // checks all of it again.
        const seen = await repo.findWithInviter(db, { id: userId }, code);
        if (!seen.user) throw userGone();
        if (isRepeat(seen.user, code)) return { status: 'already', code };
        const inviter = requireInviter(seen.user, seen.inviter);
        return serializable(db, async (trx) => {
          const user = await repo.findById(trx, userId);
          if (!user) throw userGone();
          return activate(trx, user, code);
        }, { queueOn: [inviter.id], deadline });
      })());
      // After commit and outside the deadline: the activation stands whatever the bus does.
      await notifyInviter(activation);
      return { status: 'activated', activated_invite_code: activation.code };
    },

    async updateProfile(userId: string, changes: repo.ProfileChanges): Promise<Profile> {
      try {
        await repo.updateProfile(db, userId, changes);
      } catch (error) {
        if (isUniqueViolation(error, 'users_email_lower_key')) throw new AppError('email_taken', 'Another account uses this email.');
        throw error;
      }
      return profileOf(userId);
    },

    async invitees(userId: string, limit: number, cursor?: string) {
      const after = cursor ? decodeCursor(cursor, 2, ([at, id]) => isPgTimestamp(at) && isBigintId(id)) : undefined;
      const { total, rows } = await repo.listInvitees(db, userId, limit + 1, after ? { activatedAt: after[0] as string, id: after[1] as string } : undefined);
      if (total === undefined) throw new AppError('unauthorized', 'The user of this token no longer exists.');
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        items: page.map((r) => ({ id: r.id, phone: r.phone, activated_at: r.activated_at })),
        next_cursor: rows.length > limit && last ? encodeCursor([last.activated_at_key, last.id]) : null,
        total,
      };
    },

    async isAdmin(userId: string): Promise<boolean> {
      return (await repo.findById(db, userId))?.is_admin === true;
    },

    /** Another user as the requester may see them: the public card, or everything for an admin. */
    async userById(id: string, requesterIsAdmin: boolean): Promise<PublicCard | Profile> {
      if (!isBigintId(id)) throw notFound();
      const row = await repo.findById(db, id);
      if (!row) throw notFound();
      return requesterIsAdmin ? toProfile(row) : toPublicCard(row);
    },

    async listUsers(options: { search?: string; limit: number; cursor?: string }): Promise<{ items: ProfileListItem[]; next_cursor: string | null }> {
      const before = options.cursor ? decodeCursor(options.cursor, 1, ([id]) => isBigintId(id)) : undefined;
      const rows = await repo.searchUsers(db, { search: options.search, limit: options.limit + 1, beforeId: before?.[0] });
      const page = rows.slice(0, options.limit);
      const last = page.at(-1);
      return { items: page.map(toListItem), next_cursor: rows.length > options.limit && last ? encodeCursor([last.id]) : null };
    },
  };
}

export type UserService = ReturnType<typeof userServiceFactory>;
