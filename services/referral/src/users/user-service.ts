import { AppError, generateInviteCode, type Profile } from '@refstack/shared/contracts';
import type { Kysely } from 'kysely';
import { isLive, type Database, type LiveUserRow, type UserRow } from '../db/schema.js';
import { sharedStatement, toError } from '../db/shared-statement.js';
import { isUniqueViolation } from '../db/transaction.js';
import type { InviteService } from '../invites/invite-service.js';
import { decodeCursor, encodeCursor, isBigintId } from '../paging/cursor.js';
import { requireActive, requireStatusActive, userGone } from './account-status.js';
import { toListItem, toProfile, toPublicCard, type ProfileListItem, type PublicCard } from './profile-mapper.js';
import * as repo from './user-repository.js';

export interface UserServiceDeps {
  db: Kysely<Database>;
  /** Sign-in with an invite code activates it through the invite service. */
  invites: InviteService;
}

const INSERT_ATTEMPTS = 5;

function notFound(): AppError {
  return new AppError('not_found', 'No such user.');
}

export function userServiceFactory({ db, invites }: UserServiceDeps) {
  /** Profile reads that arrive together share one statement (see sharedStatement). */
  const profileDocuments = sharedStatement<string, repo.ProfileDocument | undefined>(
    (ids) => repo.readProfileJsons(db, ids),
    async (id) => (await repo.readProfileJsons(db, [id]))[0],
    100,
  );

  /**
   * The user of this phone, inserted with a fresh invite code if there is none, in one statement.
   * An insert that finds the phone taken waits for the other sign-in to commit, so the lookup after
   * it sees that user (every caller runs at READ COMMITTED).
   */
  async function findOrCreateUser(q: repo.Db, phone: string): Promise<{ user: UserRow; created: boolean }> {
    for (let attempt = 0; attempt < INSERT_ATTEMPTS; attempt += 1) {
      const found = await repo.findOrInsertUser(q, phone, generateInviteCode());
      if (found) return found;
      // Nothing: another sign-in took the phone (found now) or the invite code collided (try another).
      const user = await repo.findByPhone(q, phone);
      if (user) return { user, created: false };
    }
    throw new Error('could not allocate a unique invite code');
  }

  /**
   * Sign-ins without an invite that arrive together find or create their users in one statement
   * (see sharedStatement). A phone it leaves open (a concurrent sign-in inserted it, or its new
   * invite code was taken) takes findOrCreateUser's own steps.
   */
  const signIns = sharedStatement<string, { user: UserRow; created: boolean }>(
    async (phones) => {
      // Distinct and in one order: two statements inserting the same phones take their locks alike.
      const distinct = [...new Set(phones)].sort();
      const users = await repo.findOrInsertUsers(
        db,
        distinct.map((phone) => ({ phone, inviteCode: generateInviteCode() })),
      );
      const answered = new Set<string>();
      return Promise.all(
        phones.map(async (phone) => {
          const signIn = users.get(phone);
          if (!signIn) return findOrCreateUser(db, phone).catch(toError);
          // The same phone twice in a batch: one sign-in created the user, the other found it.
          const first = !answered.has(phone);
          answered.add(phone);
          return first ? signIn : { user: signIn.user, created: false };
        }),
      );
    },
    (phone) => findOrCreateUser(db, phone),
    50,
  );

  /** Writes nothing for a blocked or deleted user; the read that follows tells them why. */
  async function writeChanges(q: repo.Db, userId: string, changes: repo.ProfileChanges): Promise<void> {
    try {
      await repo.updateProfile(q, userId, changes);
    } catch (error) {
      if (isUniqueViolation(error, 'users_email_lower_key'))
        throw new AppError('email_taken', 'Another account uses this email.');
      throw error;
    }
  }

  async function profileOf(userId: string): Promise<Profile> {
    return toProfile(requireActive(await repo.findById(db, userId)));
  }

  return {
    /**
     * Finds or creates the user of a verified phone, and applies an invite in the same transaction
     * when one is given: if the invite is refused, nothing is written (not even a new user).
     */
    async signIn(phone: string, inviteCode?: string): Promise<{ user: Profile; created: boolean; roles: string[] }> {
      if (!inviteCode) {
        // Without an invite nothing depends on rows other than the user's own, and the unique
        // constraints settle concurrent first sign-ins: no serializable transaction, so sign-ins
        // of neighbouring phones never fail each other's snapshots and retry.
        const { user, created } = await signIns.load(phone);
        // A deleted user's phone is erased, so only a blocked one is found here to refuse.
        const live = requireActive(user);
        return { user: toProfile(live), created, roles: live.is_admin ? ['admin'] : [] };
      }
      const outcome = await invites.activateAtSignIn(phone, inviteCode, findOrCreateUser);
      return { user: toProfile(outcome.row), created: outcome.created, roles: outcome.row.is_admin ? ['admin'] : [] };
    },

    /** The profile as its JSON answer, for GET /profile. */
    async profileJson(userId: string): Promise<string> {
      const profile = await profileDocuments.load(userId);
      if (!profile) throw userGone();
      requireStatusActive(profile.status);
      return profile.document;
    },

    async updateProfile(userId: string, changes: repo.ProfileChanges): Promise<Profile> {
      await writeChanges(db, userId, changes);
      return profileOf(userId);
    },

    /**
     * Cleaned profile changes and, when a code is given, its activation, all or nothing. The
     * activation goes first and the changes are written after its rules passed, in its transaction
     * (see AlongsideActivation): a refused invite then has written nothing, and a refused change
     * (an email taken meanwhile) rolls the activation back with it. Writing the changes first, or
     * in a statement of their own after the activation's commit, would leave one applied without
     * the other whenever the second refuses.
     */
    async updateProfileWithInvite(userId: string, changes: repo.ProfileChanges, inviteCode?: string): Promise<void> {
      if (inviteCode === undefined) return writeChanges(db, userId, changes);
      await invites.activate(userId, inviteCode, (q) => writeChanges(q, userId, changes));
    },

    /**
     * The user's row and their newest invitees (ids, and phones or null for a deleted invitee), for
     * the seeds' user details.
     */
    async withNewestInvitees(
      userId: string,
    ): Promise<{ user: LiveUserRow; invitees: Array<{ id: string; phone: string | null }> }> {
      const [user, invitees] = await Promise.all([repo.findById(db, userId), invites.newestInvitees(userId)]);
      return { user: requireActive(user), invitees };
    },

    /** Whether the caller is an admin, read from the database; a blocked or deleted caller is refused. */
    async isAdmin(userId: string): Promise<boolean> {
      return requireActive(await repo.findById(db, userId)).is_admin;
    },

    /** Another user as the requester may see them: the public card, or everything for an admin. */
    async userById(id: string, requesterIsAdmin: boolean): Promise<PublicCard | Profile> {
      if (!isBigintId(id)) throw notFound();
      const row = await repo.findById(db, id);
      // A tombstone is nobody: there is no person left to show.
      if (!row || !isLive(row)) throw notFound();
      return requesterIsAdmin ? toProfile(row) : toPublicCard(row);
    },

    async listUsers(options: {
      search?: string;
      limit: number;
      cursor?: string;
    }): Promise<{ items: ProfileListItem[]; next_cursor: string | null }> {
      const before = options.cursor ? decodeCursor(options.cursor, 1, ([id]) => isBigintId(id)) : undefined;
      const rows = await repo.searchUsers(db, {
        search: options.search,
        limit: options.limit + 1,
        beforeId: before?.[0],
      });
      const page = rows.slice(0, options.limit);
      const last = page.at(-1);
      return {
        items: page.filter(isLive).map(toListItem),
        next_cursor: rows.length > options.limit && last ? encodeCursor([last.id]) : null,
      };
    },
  };
}

export type UserService = ReturnType<typeof userServiceFactory>;
