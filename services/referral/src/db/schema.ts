import type { ColumnType, Generated, Selectable } from 'kysely';

export interface UsersTable {
  id: Generated<string>;
  /** null only on a deleted account (a check constraint holds it so). */
  phone: string | null;
  invite_code: string;
  invited_by_id: string | null;
  activated_invite_code: string | null;
  activated_at: Date | null;
  invited_count: Generated<number>;
  /**
   * The newest invitees' phones, at most 100, newest first, null for an invitee deleted since:
   * written by an activation, and rewritten whole when an invitee changes phone or is deleted.
   */
  invited_users: ColumnType<Array<string | null>, never, never>;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  is_admin: Generated<boolean>;
  /** Set by an admin: the account can neither sign in nor use its tokens, and its code is not found. */
  blocked_at: ColumnType<Date | null, never, Date | null>;
  /**
   * The latest block's time, whole seconds, kept by an unblock: the sessions begun at or before it
   * are over (auth refuses their refresh).
   */
  revoked_before: ColumnType<Date | null, never, Date | null>;
  /** Set by a deletion, with phone, names and email erased in the same write: a tombstone. */
  deleted_at: ColumnType<Date | null, never, Date | null>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface Database {
  users: UsersTable;
}

export type UserRow = Selectable<UsersTable>;

/** A row of an account that is not deleted, which always has its phone. */
export type LiveUserRow = UserRow & { phone: string; deleted_at: null };

export function isLive(row: UserRow): row is LiveUserRow {
  return row.deleted_at === null && row.phone !== null;
}
