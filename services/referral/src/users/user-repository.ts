import { sql, type Kysely, type Transaction } from 'kysely';
import { runStatement } from '../db/database.js';
import { isLive, type Database, type LiveUserRow, type UserRow } from '../db/schema.js';
import type { AccountStatus } from '@refstack/shared/contracts';
import { accountStatus, isoUtc } from '../db/sql-fragments.js';

export type Db = Kysely<Database> | Transaction<Database>;

/**
 * A user's row, which carries the embedded invitee list itself (see recordInvitee). The columns are
 * named, not `*`: a prepared statement whose result changes shape (a column added by a migration
 * while this instance runs) fails on every connection that prepared it, until that one closes.
 */
const USER_COLUMNS = `id, phone, invite_code, invited_by_id, activated_invite_code, activated_at, invited_count,
    invited_users,
    first_name, last_name, email, is_admin, blocked_at, revoked_before, deleted_at, created_at, updated_at`;

export const PROFILE_BY_ID = {
  name: 'profile-by-id',
  text: `SELECT ${USER_COLUMNS}
    FROM users WHERE id = $1`,
};

/**
 * GET /profile's answer rendered by PostgreSQL as the JSON document itself, in the field order and
 * formats of the Profile schema (ids as strings, created_at as ISO 8601 UTC with milliseconds):
 * only the columns the document needs cross the wire and nothing is parsed into objects and
 * serialised again. profile-json.test.ts holds it equal to toProfile() of the same row.
 *
 * It takes a list of ids and answers one row per position (`n`, from 1), so that reads arriving
 * together share one round trip (see readProfileJsons); a repeated id gets a row for each position.
 * The account's status comes with it, so a blocked or deleted caller costs no read of its own.
 */
export const PROFILE_JSON_BY_IDS = {
  name: 'profile-json-by-ids',
  text: `
    SELECT k.n, json_build_object(
      'id', u.id::text,
      'phone', u.phone,
      'invite_code', u.invite_code,
      'activated_invite_code', u.activated_invite_code,
      'invited_users', u.invited_users,
      'invited_count', u.invited_count,
      'first_name', u.first_name,
      'last_name', u.last_name,
      'email', u.email,
      'created_at', ${isoUtc('u.created_at')}
    )::text AS document,
    ${accountStatus('u')} AS status
    FROM unnest($1::bigint[]) WITH ORDINALITY AS k(id, n)
    JOIN users u ON u.id = k.id`,
};

export interface ProfileDocument {
  document: string;
  status: AccountStatus;
}

/**
 * The profiles of these users as their JSON answers, in the order asked, undefined where a user does
 * not exist. Ids must be valid bigints (token subjects are checked before they get here): one bad
 * id would fail every read it shares the statement with.
 */
export async function readProfileJsons(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<Array<ProfileDocument | undefined>> {
  const documents = new Array<ProfileDocument | undefined>(ids.length).fill(undefined);
  const rows = await runStatement<{ n: string } & ProfileDocument>(db, PROFILE_JSON_BY_IDS, [ids]);
  for (const { n, document, status } of rows) documents[Number(n) - 1] = { document, status };
  return documents;
}

export const USER_BY_PHONE = {
  name: 'user-by-phone',
  text: `SELECT ${USER_COLUMNS}
    FROM users WHERE phone = $1`,
};

/** A user's row: the profile's, a refresh's check of its user, an activation's answer. */
export async function findById(db: Db, id: string): Promise<UserRow | undefined> {
  return (await runStatement<UserRow>(db, PROFILE_BY_ID, [id]))[0];
}

export async function findByPhone(db: Db, phone: string): Promise<UserRow | undefined> {
  return (await runStatement<UserRow>(db, USER_BY_PHONE, [phone]))[0];
}

/**
 * Sign-ins' users, found by phone or inserted with a fresh invite code, in one statement for any
 * number of phones, so that sign-ins arriving together share one round trip: one row per position
 * of the arrays (`n`, from 1) that found its user or inserted one. Phones must be distinct (two
 * inserts of one phone in one statement would both seem to succeed). A position without a row
 * needs a second look: its phone was inserted by a sign-in that committed after this statement's
 * snapshot, or its invite code was taken.
 */
export const FIND_OR_INSERT_USERS = {
  name: 'find-or-insert-users',
  text: `
    WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(phone, invite_code, n)),
    found AS (
      SELECT k.n, ${USER_COLUMNS.split(',')
        .map((column) => `u.${column.trim()}`)
        .join(', ')}
      FROM k JOIN users u ON u.phone = k.phone
    ),
    inserted AS (
      INSERT INTO users (phone, invite_code)
      SELECT k.phone, k.invite_code FROM k WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.n = k.n)
      ON CONFLICT DO NOTHING
      RETURNING ${USER_COLUMNS}
    )
    SELECT f.*, false AS created FROM found f
    UNION ALL
    SELECT k.n, i.*, true AS created FROM inserted i JOIN k ON k.phone = i.phone`,
};

/**
 * The users of these distinct phones, each found or inserted with its invite code, by phone; a
 * phone missing from the answer needs a second look (see FIND_OR_INSERT_USERS).
 */
export async function findOrInsertUsers(
  db: Db,
  signIns: ReadonlyArray<{ phone: string; inviteCode: string }>,
): Promise<Map<string, { user: UserRow; created: boolean }>> {
  const rows = await runStatement<UserRow & { n: string; created: boolean }>(db, FIND_OR_INSERT_USERS, [
    signIns.map((s) => s.phone),
    signIns.map((s) => s.inviteCode),
  ]);
  const users = new Map<string, { user: UserRow; created: boolean }>();
  for (const { n, created, ...user } of rows) {
    const signIn = signIns[Number(n) - 1];
    if (signIn) users.set(signIn.phone, { user, created });
  }
  return users;
}

/**
 * The user of this phone, or a new one with this invite code: FIND_OR_INSERT_USERS for one phone.
 * Undefined when neither: another sign-in inserted the phone meanwhile (its insert committed after
 * this statement's snapshot, so look the phone up again) or the invite code is taken (try another).
 */
export async function findOrInsertUser(
  db: Db,
  phone: string,
  inviteCode: string,
): Promise<{ user: UserRow; created: boolean } | undefined> {
  return (await findOrInsertUsers(db, [{ phone, inviteCode }])).get(phone);
}

export interface ProfileChanges {
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
}

/**
 * Writes the changes on an active account only; false when nothing was written (no changes, or the
 * account is blocked, deleted or gone). The condition is the write's own, so a deletion committed
 * meanwhile is seen by it: names never come back onto a tombstone.
 */
export async function updateProfile(db: Db, userId: string, changes: ProfileChanges): Promise<boolean> {
  if (Object.keys(changes).length === 0) return false;
  const result = await db
    .updateTable('users')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .where('blocked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Admin search: by phone digits, exact invite code or name prefix; keyset-paged by id, newest first.
 * Each branch has its index (2026-12-07T01-search-indexes), so a rare term is found through them and
 * a common one by walking the newest users until the page is full: the planner picks, by the term.
 */
export async function searchUsers(db: Db, options: UserSearch): Promise<UserRow[]> {
  return searchQuery(db, options).execute();
}

export interface UserSearch {
  search?: string;
  limit: number;
  beforeId?: string;
}

/** searchUsers' statement, unrun (the scale check reads its plan). */
export function searchQuery(db: Db, options: UserSearch) {
  // Tombstones are nobody's to find: nothing of a person is left on them.
  let query = db
    .selectFrom('users')
    .selectAll()
    .where('deleted_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(options.limit);
  if (options.beforeId) query = query.where('id', '<', options.beforeId);
  const term = options.search?.trim();
  if (term) {
    const like = term.replace(/[\\%_]/g, (ch) => `\\${ch}`);
    const digits = term.replace(/\D/g, '');
    query = query.where((eb) =>
      eb.or([
        ...(digits.length >= 3 ? [eb('phone', 'like', `%${digits}%`)] : []),
        eb('invite_code', '=', term.toUpperCase()),
        // As the partial prefix indexes are written: lower(name), compared byte by byte.
        eb.and([eb('first_name', 'is not', null), eb(sql`lower(first_name)`, 'like', sql`lower(${like}) || '%'`)]),
        eb.and([eb('last_name', 'is not', null), eb(sql`lower(last_name)`, 'like', sql`lower(${like}) || '%'`)]),
      ]),
    );
  }
  return query;
}

export async function setAdmin(db: Db, phone: string, isAdmin: boolean): Promise<boolean> {
  const result = await db
    .updateTable('users')
    .set({ is_admin: isAdmin, updated_at: sql<Date>`now()` })
    .where('phone', '=', phone)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Blocks or unblocks the account with this id or phone; its id, or undefined when there is no such
 * account that is not deleted. Blocking again keeps the first block's time, and moves
 * `revoked_before` to the latest block's `before` (seconds); an unblock leaves it.
 */
export async function setBlocked(
  db: Db,
  who: { id: string } | { phone: string },
  block: { before: number } | false,
): Promise<string | undefined> {
  const row = await db
    .updateTable('users')
    .set({
      blocked_at: block ? sql<Date>`coalesce(blocked_at, now())` : null,
      ...(block ? { revoked_before: sql<Date>`greatest(revoked_before, to_timestamp(${block.before}))` } : {}),
      updated_at: sql<Date>`now()`,
    })
    .where('deleted_at', 'is', null)
    .where((eb) => ('id' in who ? eb('id', '=', who.id) : eb('phone', '=', who.phone)))
    .returning('id')
    .executeTakeFirst();
  return row?.id;
}

/** The account's new phone (the caller holds its row locked); a taken phone is a unique violation. */
export async function setPhone(db: Db, id: string, phone: string): Promise<LiveUserRow> {
  const row = await db
    .updateTable('users')
    .set({ phone, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!row || !isLive(row)) throw new Error('the user vanished while locked');
  return row;
}

/**
 * Makes the account a tombstone: everything that names a person is erased in this one write, and
 * admin rights go with them. The time is the clock's, taken while the row is locked, as an
 * activation's is, or a microsecond past the newest invitee's when the database clock stepped back
 * (an activation's time follows its owner's newest invitee's the same way): every activation of its
 * code is older than its deletion.
 */
export async function erase(db: Db, id: string): Promise<void> {
  await db
    .updateTable('users')
    .set({
      phone: null,
      first_name: null,
      last_name: null,
      email: null,
      is_admin: false,
      deleted_at: sql<Date>`greatest(clock_timestamp(), (
        SELECT n.activated_at + interval '1 microsecond' FROM users n WHERE n.invited_by_id = ${id}
        ORDER BY n.activated_at DESC, n.id DESC LIMIT 1))`,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .execute();
}

/** How many invitees one statement of an export reads: about a third of a second's work. */
export const EXPORT_CHUNK = 100_000;

/**
 * Everyone who activated this user's code, newest first: ids and times only (the phones are theirs).
 * Read in keyset chunks from the invitee index, so that an inviter with a million invitees is not one
 * statement past the statement timeout; the caller's repeatable-read transaction keeps the chunks
 * one snapshot.
 */
export async function inviteesForExport(
  db: Db,
  id: string,
  chunk = EXPORT_CHUNK,
): Promise<Array<{ id: string; activated_at: string }>> {
  const all: Array<{ id: string; activated_at: string }> = [];
  let after: { at: string; id: string } | undefined;
  for (;;) {
    const { rows } = await sql<{ id: string; activated_at: string; at: string }>`
      SELECT id, ${sql.raw(isoUtc('activated_at'))} AS activated_at, activated_at::text AS at FROM users
      WHERE invited_by_id = ${id}
        ${after ? sql`AND (activated_at, id) < (${after.at}::timestamptz, ${after.id}::bigint)` : sql``}
      ORDER BY activated_at DESC, id DESC
      LIMIT ${chunk}
    `.execute(db);
    for (const row of rows) all.push({ id: row.id, activated_at: row.activated_at });
    const last = rows.at(-1);
    if (rows.length < chunk || !last) return all;
    after = { at: last.at, id: last.id };
  }
}
