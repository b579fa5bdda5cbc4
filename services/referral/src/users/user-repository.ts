import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import { poolOf } from '../db/database.js';
import type { Database, UserRow } from '../db/schema.js';
import { toProfile } from './profile-mapper.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** How many invitee phones a profile embeds; the rest are paged through /profile/invited. */
export const EMBEDDED_INVITEES = 100;

/**
 * A user's row, which carries the embedded invitee list itself (see recordInvitee). The columns are
 * named, not `*`: a prepared statement whose result changes shape (a column added by a migration
 * while this instance runs) fails on every connection that prepared it, until that one closes.
 */
export const PROFILE_BY_ID = {
  name: 'profile-by-id',
  text: `SELECT id, phone, invite_code, invited_by_id, activated_invite_code, activated_at, invited_count, invited_users,
    first_name, last_name, email, is_admin, created_at, updated_at
    FROM users WHERE id = $1`,
};

/**
 * A timestamptz as text in Date#toISOString's form (UTC, milliseconds, microseconds truncated as a
 * Date would), so that answers need not parse it into a Date and format it again.
 */
const isoUtc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * GET /profile's answer rendered by PostgreSQL as the JSON document itself, in the field order and
 * formats of the Profile schema (ids as strings, created_at as ISO 8601 UTC with milliseconds):
 * only the columns the document needs cross the wire and nothing is parsed into objects and
 * serialised again. profile-json.test.ts holds it equal to toProfile() of the same row.
 *
 * It takes a list of ids and answers one row per position (`n`, from 1), so that reads arriving
 * together share one round trip (see readProfileJsons); a repeated id gets a row for each position.
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
    )::text AS document
    FROM unnest($1::bigint[]) WITH ORDINALITY AS k(id, n)
    JOIN users u ON u.id = k.id`,
};

/**
 * The profiles of these users as their JSON answers, in the order asked, undefined where a user does
 * not exist. Ids must be valid bigints (token subjects are checked before they get here): one bad
 * id would fail every read it shares the statement with.
 */
export async function readProfileJsons(db: Kysely<Database>, ids: readonly string[]): Promise<Array<string | undefined>> {
  const pool = poolOf(db);
  if (!pool) {
    return Promise.all(ids.map(async (id) => {
      const row = await findById(db, id);
      return row ? JSON.stringify(toProfile(row)) : undefined;
    }));
  }
  const documents = new Array<string | undefined>(ids.length).fill(undefined);
  const { rows } = await pool.query<{ n: string; document: string }>({ ...PROFILE_JSON_BY_IDS, values: [ids] });
  for (const row of rows) documents[Number(row.n) - 1] = row.document;
  return documents;
}

/** The profile as a row (for the paths that change it first): a named prepared statement. */
export async function readProfile(db: Kysely<Database>, id: string): Promise<UserRow | undefined> {
  const pool = poolOf(db);
  if (!pool) return findById(db, id);
  return (await pool.query<UserRow>({ ...PROFILE_BY_ID, values: [id] })).rows[0];
}

export async function findByPhone(db: Db, phone: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('phone', '=', phone).executeTakeFirst();
}

export async function findById(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findIdByInviteCode(db: Db, inviteCode: string): Promise<{ id: string; phone: string } | undefined> {
  return db.selectFrom('users').select(['id', 'phone']).where('invite_code', '=', inviteCode).executeTakeFirst();
}

/**
 * A user (by id or phone) and the owner of an invite code, in one plain read: what an activation can
 * answer before it queues on the inviter's lock. Either may be missing.
 */
export async function findWithInviter(db: Db, who: { id: string } | { phone: string }, inviteCode: string): Promise<{ user: UserRow | undefined; inviter: { id: string } | undefined }> {
  const match = 'id' in who ? sql`u.id = ${who.id}` : sql`u.phone = ${who.phone}`;
  // Without a user every column of u is null.
  type Row = { inviter_id: string | null } & (UserRow | { id: null });
  const { rows } = await sql<Row>`
    SELECT i.id AS inviter_id, u.*
    FROM (SELECT 1) AS one
    LEFT JOIN users u ON ${match}
    LEFT JOIN users i ON i.invite_code = ${inviteCode}
  `.execute(db);
  const row = rows[0];
  if (!row) throw new Error('a row is always returned');
  const { inviter_id: inviterId, ...user } = row;
  return { user: user.id === null ? undefined : (user as UserRow), inviter: inviterId === null ? undefined : { id: inviterId } };
}

/** Inserts unless the phone or the invite code is taken; undefined tells the caller which to check. */
export async function insertUser(db: Db, phone: string, inviteCode: string): Promise<UserRow | undefined> {
  return db.insertInto('users').values({ phone, invite_code: inviteCode }).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
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
    .set({ invited_by_id: inviterId, activated_invite_code: inviteCode, activated_at: sql<Date>`clock_timestamp()`, updated_at: sql<Date>`now()` })
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
      invited_users = to_json((ARRAY[${inviteePhone}::text] || ARRAY(SELECT json_array_elements_text(invited_users)))[1:${EMBEDDED_INVITEES}])
    WHERE id = ${inviterId}
    RETURNING invited_count
  `.execute(db);
  const row = result.rows[0];
  if (!row) throw new Error('the inviter vanished while locked');
  return row.invited_count;
}

export interface InviteeRow {
  id: string;
  phone: string;
  /** ISO 8601 UTC with milliseconds, as the answer carries it. */
  activated_at: string;
  /** activated_at exactly as PostgreSQL holds it (microseconds), for the cursor. */
  activated_at_key: string;
}

export interface InviteePage {
  /** The inviter's invited_count; undefined when the inviter does not exist. */
  total: number | undefined;
  rows: InviteeRow[];
}

// One round trip: the inviter's row (for the total) joined with one page of invitees, which is an
// index-only scan of users_invitees_idx. Two statements, so that the cursor is an index condition
// (where a later page starts), never a filter over the pages before it.
const inviteePage = (name: string, after: string) => ({
  name,
  text: `
    SELECT u.invited_count AS total, i.id, i.phone, ${isoUtc('i.activated_at')} AS activated_at, i.activated_at::text AS activated_at_key
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
export async function listInvitees(db: Kysely<Database>, inviterId: string, limit: number, after?: { activatedAt: string; id: string }): Promise<InviteePage> {
  const { statement, values } = inviteesQuery(inviterId, limit, after);
  const pool = poolOf(db);
  type Row = Omit<InviteeRow, 'id'> & { id: string | null; total: number };
  const rows = pool ? (await pool.query<Row>({ ...statement, values })).rows : (await db.executeQuery<Row>(CompiledQuery.raw(statement.text, values))).rows;
  return { total: rows[0]?.total, rows: rows.filter((r): r is Row & { id: string } => r.id !== null) };
}

export interface ProfileChanges {
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
}

export async function updateProfile(db: Db, userId: string, changes: ProfileChanges): Promise<void> {
  if (Object.keys(changes).length === 0) return;
  await db.updateTable('users').set({ ...changes, updated_at: sql<Date>`now()` }).where('id', '=', userId).execute();
}

/** Admin search: by phone digits, exact invite code or name prefix; keyset-paged by id, newest first. */
export async function searchUsers(db: Db, options: { search?: string; limit: number; beforeId?: string }): Promise<UserRow[]> {
  let query = db.selectFrom('users').selectAll().orderBy('id', 'desc').limit(options.limit);
  if (options.beforeId) query = query.where('id', '<', options.beforeId);
  const term = options.search?.trim();
  if (term) {
    const like = term.replace(/[\\%_]/g, (ch) => `\\${ch}`);
    const digits = term.replace(/\D/g, '');
    query = query.where((eb) =>
      eb.or([
        ...(digits.length >= 3 ? [eb('phone', 'like', `%${digits}%`)] : []),
        eb('invite_code', '=', term.toUpperCase()),
        eb('first_name', 'ilike', `${like}%`),
        eb('last_name', 'ilike', `${like}%`),
      ]),
    );
  }
  return query.execute();
}

export async function setAdmin(db: Db, phone: string, isAdmin: boolean): Promise<boolean> {
  const result = await db.updateTable('users').set({ is_admin: isAdmin, updated_at: sql<Date>`now()` }).where('phone', '=', phone).executeTakeFirst();
  return result.numUpdatedRows === 1n;
}
