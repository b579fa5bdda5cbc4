import { sql, type Kysely } from 'kysely';
import { runStatement, type HeldConnection } from '../db/database.js';
import type { Database, UserRow } from '../db/schema.js';
import type { AccountStatus } from '@refstack/shared/contracts';
import { accountStatus, isoUtc } from '../db/sql-fragments.js';
import type { Db } from '../users/user-repository.js';

import { EMBEDDED_INVITEES, newestInviteePhones } from './invitee-list-sql.js';

export { EMBEDDED_INVITEES, newestInviteePhones, STALE_INVITEE_LISTS_SQL } from './invitee-list-sql.js';

/**
 * A user (by id or phone) and the owner of an invite code, in one plain read: what an activation can
 * answer before it queues on the inviter's lock. Either may be missing; an owner who may not invite
 * (blocked, deleted) is missing, as in activate_invite.
 */
export async function findWithInviter(
  db: Db,
  who: { id: string } | { phone: string },
  inviteCode: string,
): Promise<{ user: UserRow | undefined; inviter: { id: string } | undefined }> {
  const match = 'id' in who ? sql`u.id = ${who.id}` : sql`u.phone = ${who.phone}`;
  // Without a user every column of u is null.
  type Row = { inviter_id: string | null } & (UserRow | { id: null });
  const { rows } = await sql<Row>`
    SELECT i.id AS inviter_id, u.*
    FROM (SELECT 1) AS one
    LEFT JOIN users u ON ${match}
    LEFT JOIN users i ON i.invite_code = ${inviteCode} AND i.deleted_at IS NULL AND i.blocked_at IS NULL
  `.execute(db);
  const row = rows[0];
  if (!row) throw new Error('a row is always returned');
  const { inviter_id: inviterId, ...user } = row;
  return {
    user: user.id === null ? undefined : (user as UserRow),
    inviter: inviterId === null ? undefined : { id: inviterId },
  };
}

/**
 * Row locks on both ends of a new invite edge, always in id order: crossed activations then queue
 * behind each other instead of deadlocking (and waiting out PostgreSQL's deadlock timeout).
 */
export async function lockPair(db: Db, a: string, b: string): Promise<void> {
  await sql`SELECT id FROM users WHERE id IN (${a}, ${b}) ORDER BY id FOR UPDATE`.execute(db);
}

/** What `activate_invite` answered: an activation, a repeat, or why it was refused. */
export type ActivationOutcome =
  | { outcome: 'activated'; inviterId: string; inviterPhone: string; invitedCount: number }
  | { outcome: 'already' | 'other_code'; activatedCode: string | null }
  | { outcome: 'gone' | 'blocked' | 'not_found' | 'self' | 'cycle' };

export const ACTIVATE_INVITE = {
  name: 'activate-invite',
  text: `SELECT outcome, o_inviter_id, o_inviter_phone, o_invited_count, o_activated_code
    FROM activate_invite($1, $2, $3, $4)`,
};

/**
 * An activation in one round trip: the `activate_invite` function (migrations 2026-12-06T00, which
 * says how its locks settle every race, and 2026-12-07T02) queues on the owner's advisory lock, locks
 * the user's and the owner's rows in id order, checks again under them, refuses a cycle, sets the
 * user's inviter, and counts the invitee on the owner's row with their phone first in its embedded
 * list (the newest EMBEDDED_INVITEES). The activation time is taken under both locks and is later
 * than the owner's newest invitee's, so an owner's invitees get increasing times in the order their
 * activations commit, the order of the list, and a newcomer never lands between invitee pages
 * already read. Alone it is its own transaction; in the caller's transaction its locks last until
 * that commits. Its lock waits together end `lockWaitMs` after it starts.
 */
export async function activateInvite(
  db: Db | HeldConnection,
  userId: string,
  inviteCode: string,
  lockWaitMs: number,
): Promise<ActivationOutcome> {
  type Row = {
    outcome: ActivationOutcome['outcome'];
    o_inviter_id: string | null;
    o_inviter_phone: string | null;
    o_invited_count: number | null;
    o_activated_code: string | null;
  };
  const rows = await runStatement<Row>(db, ACTIVATE_INVITE, [
    userId,
    inviteCode,
    EMBEDDED_INVITEES,
    Math.ceil(lockWaitMs),
  ]);
  const row = rows[0];
  if (!row) throw new Error('activate_invite always answers one row');
  switch (row.outcome) {
    case 'activated':
      if (row.o_inviter_id === null || row.o_inviter_phone === null || row.o_invited_count === null)
        throw new Error('an activation names its inviter');
      return {
        outcome: 'activated',
        inviterId: row.o_inviter_id,
        inviterPhone: row.o_inviter_phone,
        invitedCount: row.o_invited_count,
      };
    case 'already':
    case 'other_code':
      return { outcome: row.outcome, activatedCode: row.o_activated_code };
    default:
      return { outcome: row.outcome };
  }
}

/**
 * Rewrites the inviter's embedded list from the invitee index: after an invitee's phone changed or
 * was erased, which recordInvitee's prepending cannot express. Runs in that change's transaction
 * with the inviter's row locked, as recordInvitee does, so the two never interleave.
 */
export async function rewriteInviteeList(db: Db, inviterId: string): Promise<void> {
  await sql`
    UPDATE users u SET invited_users = to_json(${sql.raw(newestInviteePhones('u.id'))}) WHERE u.id = ${inviterId}
  `.execute(db);
}

export interface InviteeRow {
  id: string;
  /** null for an invitee deleted since. */
  phone: string | null;
  /** ISO 8601 UTC with milliseconds, as the answer carries it. */
  activated_at: string;
  /** activated_at exactly as PostgreSQL holds it (microseconds), for the cursor. */
  activated_at_key: string;
}

export interface InviteePage {
  /** The inviter's invited_count; undefined when the inviter does not exist. */
  total: number | undefined;
  /** The inviter's own status, so that the read tells whether its caller may still read. */
  status: AccountStatus | undefined;
  rows: InviteeRow[];
}

/** One page of an inviter's invitees, newest first, continuing strictly after the given position. */
export interface InviteePageRequest {
  inviterId: string;
  limit: number;
  /** Where the previous page ended: activated_at as PostgreSQL writes it, and the invitee's id. */
  after?: { activatedAt: string; id: string };
}

// Where a first page starts: after a position every invitee comes after (activated_at is never
// null for an invitee, and always finite), so that first and later pages are the same statement.
const BEFORE_EVERY_INVITEE = { activatedAt: 'infinity', id: '9223372036854775807' };

/**
 * Pages of invitees, one per position of the arrays (`n`, from 1), so that page reads arriving
 * together share one round trip: each inviter's row (for the total and their status) joined with
 * their page, an index-only scan of users_invitees_idx that starts at the page's position (an
 * index condition, never a filter over the pages before it). A page's rows come out in the index's
 * order, as the nested loop over LATERAL yields them; without an inviter a position has no rows.
 */
export const INVITEE_PAGES = {
  name: 'invitee-pages',
  text: `
    SELECT k.n, u.invited_count AS total, ${accountStatus('u')} AS status, i.id, i.phone,
      ${isoUtc('i.activated_at')} AS activated_at, i.activated_at::text AS activated_at_key
    FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::bigint[])
      WITH ORDINALITY AS k(inviter_id, page_size, after_at, after_id, n)
    JOIN users u ON u.id = k.inviter_id
    LEFT JOIN LATERAL (
      SELECT id, phone, activated_at FROM users
      WHERE invited_by_id = u.id AND (activated_at, id) < (k.after_at, k.after_id)
      ORDER BY activated_at DESC, id DESC
      LIMIT k.page_size
    ) i ON true`,
};

/** INVITEE_PAGES' values for these pages. */
export function inviteePagesValues(requests: readonly InviteePageRequest[]): unknown[] {
  const after = requests.map((r) => r.after ?? BEFORE_EVERY_INVITEE);
  return [
    requests.map((r) => r.inviterId),
    requests.map((r) => r.limit),
    after.map((a) => a.activatedAt),
    after.map((a) => a.id),
  ];
}

/**
 * These pages of invitees, in the order asked. Ids and cursor positions must be ones PostgreSQL
 * takes (the route checks them): one it refuses fails every page of its statement.
 */
export async function readInviteePages(
  db: Kysely<Database>,
  requests: readonly InviteePageRequest[],
): Promise<InviteePage[]> {
  type Row = Omit<InviteeRow, 'id'> & { n: string; id: string | null; total: number; status: AccountStatus };
  const pages = requests.map((): InviteePage => ({ total: undefined, status: undefined, rows: [] }));
  for (const row of await runStatement<Row>(db, INVITEE_PAGES, inviteePagesValues(requests))) {
    const page = pages[Number(row.n) - 1];
    if (!page) continue;
    page.total = row.total;
    page.status = row.status;
    if (row.id !== null) {
      const { id, phone, activated_at, activated_at_key } = row;
      page.rows.push({ id, phone, activated_at, activated_at_key });
    }
  }
  return pages;
}
