import { sql, type Kysely } from 'kysely';
import { poolOf } from '../db/database.js';
import type { Database, UserRow } from '../db/schema.js';
import type { AccountStatus } from '@refstack/shared/contracts';
import { accountStatus, isoUtc } from '../db/sql-fragments.js';
import type { Db } from '../users/user-repository.js';

import { EMBEDDED_INVITEES, newestInviteePhones } from './invitee-list-sql.js';

export { EMBEDDED_INVITEES, newestInviteePhones, STALE_INVITEE_LISTS_SQL } from './invitee-list-sql.js';

/**
 * The owner of an invite code who may be invited by: a blocked or deleted owner's code is not found,
 * as if it had never been handed out (it never is again: the tombstone keeps it).
 */
export async function findIdByInviteCode(
  db: Db,
  inviteCode: string,
): Promise<{ id: string; phone: string } | undefined> {
  const row = await db
    .selectFrom('users')
    .select(['id', 'phone'])
    .where('invite_code', '=', inviteCode)
    .where('deleted_at', 'is', null)
    .where('blocked_at', 'is', null)
    .executeTakeFirst();
  // A live row always has its phone (users_phone_unless_deleted).
  return row && row.phone !== null ? { id: row.id, phone: row.phone } : undefined;
}

/**
 * A user (by id or phone) and the owner of an invite code, in one plain read: what an activation can
 * answer before it queues on the inviter's lock. Either may be missing; an owner who may not invite
 * (blocked, deleted) is missing, as in findIdByInviteCode.
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

/** Whether anyone has activated this user's code: without invitees a user cannot close a cycle. */
export async function hasInvitees(db: Db, userId: string): Promise<boolean> {
  const row = await db.selectFrom('users').select('id').where('invited_by_id', '=', userId).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** True when `ancestorId` is `userId` itself or anywhere above it in the invite tree. */
export async function isAncestor(db: Db, ancestorId: string, userId: string): Promise<boolean> {
  const result = await sql<{ found: boolean }>`
    WITH RECURSIVE chain(id, invited_by_id) AS (
      SELECT id, invited_by_id FROM users WHERE id = ${userId}
      UNION ALL
      SELECT u.id, u.invited_by_id FROM users u JOIN chain c ON u.id = c.invited_by_id
    )
    SELECT EXISTS (SELECT 1 FROM chain WHERE id = ${ancestorId}) AS found
  `.execute(db);
  return result.rows[0]?.found === true;
}

/**
 * The conditional write: only a user who has not activated a code yet can be changed. The time is
 * the clock's, taken while both rows are locked (lockPair), not the transaction's start: so an
 * inviter's invitees get increasing times in the order their activations commit, the order in
 * which recordInvitee lists them, and a newcomer never lands between invitee pages already read.
 */
export async function setInviter(db: Db, userId: string, inviterId: string, inviteCode: string): Promise<boolean> {
  const result = await db
    .updateTable('users')
    .set({
      invited_by_id: inviterId,
      activated_invite_code: inviteCode,
      activated_at: sql<Date>`clock_timestamp()`,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', userId)
    .where('invited_by_id', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Counts a new invitee on the inviter's row and puts their phone first in its embedded list, which
 * keeps the newest EMBEDDED_INVITEES. Runs in the activation's transaction with the inviter's row
 * locked, so activations of one inviter apply one after another, each on the list the last left.
 */
export async function recordInvitee(db: Db, inviterId: string, inviteePhone: string): Promise<number> {
  const result = await sql<{ invited_count: number }>`
    UPDATE users SET
      invited_count = invited_count + 1,
      invited_users = to_json(
        (ARRAY[${inviteePhone}::text] || ARRAY(SELECT json_array_elements_text(invited_users)))[1:${EMBEDDED_INVITEES}]
      )
    WHERE id = ${inviterId}
    RETURNING invited_count
  `.execute(db);
  const row = result.rows[0];
  if (!row) throw new Error('the inviter vanished while locked');
  return row.invited_count;
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

// One round trip: the inviter's row (for the total) joined with one page of invitees, which is an
// index-only scan of users_invitees_idx. Two statements, so that the cursor is an index condition
// (where a later page starts), never a filter over the pages before it.
const inviteePage = (name: string, after: string) => ({
  name,
  text: `
    SELECT u.invited_count AS total, ${accountStatus('u')} AS status, i.id, i.phone,
      ${isoUtc('i.activated_at')} AS activated_at, i.activated_at::text AS activated_at_key
    FROM users u
    LEFT JOIN LATERAL (
      SELECT id, phone, activated_at FROM users
      WHERE invited_by_id = u.id ${after}
      ORDER BY activated_at DESC, id DESC
      LIMIT $2
    ) i ON true
    WHERE u.id = $1`,
});
const INVITEES_FIRST = inviteePage('invitees-first', '');
const INVITEES_AFTER = inviteePage('invitees-after', 'AND (activated_at, id) < ($3::timestamptz, $4::bigint)');

export function inviteesQuery(inviterId: string, limit: number, after?: { activatedAt: string; id: string }) {
  return after
    ? { statement: INVITEES_AFTER, values: [inviterId, limit, after.activatedAt, after.id] as unknown[] }
    : { statement: INVITEES_FIRST, values: [inviterId, limit] as unknown[] };
}

/** One page of invitees, newest first, continuing strictly after the given position. */
export async function listInvitees(
  db: Kysely<Database>,
  inviterId: string,
  limit: number,
  after?: { activatedAt: string; id: string },
): Promise<InviteePage> {
  const { statement, values } = inviteesQuery(inviterId, limit, after);
  type Row = Omit<InviteeRow, 'id'> & { id: string | null; total: number; status: AccountStatus };
  const { rows } = await poolOf(db).query<Row>({ ...statement, values });
  return {
    total: rows[0]?.total,
    status: rows[0]?.status,
    rows: rows.filter((r): r is Row & { id: string } => r.id !== null),
  };
}
