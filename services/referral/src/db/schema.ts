import type { ColumnType, Generated, Selectable } from 'kysely';

export interface UsersTable {
  id: Generated<string>;
  phone: string;
  invite_code: string;
  invited_by_id: string | null;
  activated_invite_code: string | null;
  activated_at: Date | null;
  invited_count: Generated<number>;
  /** The newest invitees' phones, at most 100, newest first: written only by an activation. */
  invited_users: ColumnType<string[], never, never>;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  is_admin: Generated<boolean>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface Database {
  users: UsersTable;
}

export type UserRow = Selectable<UsersTable>;
