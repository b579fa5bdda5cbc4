import { sql, type Kysely, type Transaction } from 'kysely';
import { poolOf } from '../db/database.js';
import type { Database, UserRow } from '../db/schema.js';
import { isoUtc } from '../db/sql-fragments.js';

export type Db = Kysely<Database> | Transaction<Database>;

/**
 * A user's row, which carries the embedded invitee list itself (see recordInvitee). The columns are
 * named, not `*`: a prepared statement whose result changes shape (a column added by a migration
 * while this instance runs) fails on every connection that prepared it, until that one closes.
 */
export const PROFILE_BY_ID = {
  name: 'profile-by-id',
  text: `SELECT id, phone, invite_code, invited_by_id, activated_invite_code, activated_at, invited_count,
    invited_users,
    first_name, last_name, email, is_admin, created_at, updated_at
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
export async function readProfileJsons(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<Array<string | undefined>> {
  const pool = poolOf(db);
  const documents = new Array<string | undefined>(ids.length).fill(undefined);
  const { rows } = await pool.query<{ n: string; document: string }>({ ...PROFILE_JSON_BY_IDS, values: [ids] });
  for (const row of rows) documents[Number(row.n) - 1] = row.document;
  return documents;
}

/** The profile as a row (for the paths that change it first): a named prepared statement. */
export async function readProfile(db: Kysely<Database>, id: string): Promise<UserRow | undefined> {
  return (await poolOf(db).query<UserRow>({ ...PROFILE_BY_ID, values: [id] })).rows[0];
}

export async function findByPhone(db: Db, phone: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('phone', '=', phone).executeTakeFirst();
}

export async function findById(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Inserts unless the phone or the invite code is taken; undefined tells the caller which to check. */
export async function insertUser(db: Db, phone: string, inviteCode: string): Promise<UserRow | undefined> {
  return db
    .insertInto('users')
    .values({ phone, invite_code: inviteCode })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
}

export interface ProfileChanges {
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
}

export async function updateProfile(db: Db, userId: string, changes: ProfileChanges): Promise<void> {
  if (Object.keys(changes).length === 0) return;
  await db
    .updateTable('users')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', userId)
    .execute();
}

/** Admin search: by phone digits, exact invite code or name prefix; keyset-paged by id, newest first. */
export async function searchUsers(
  db: Db,
  options: { search?: string; limit: number; beforeId?: string },
): Promise<UserRow[]> {
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
  const result = await db
    .updateTable('users')
    .set({ is_admin: isAdmin, updated_at: sql<Date>`now()` })
    .where('phone', '=', phone)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}
