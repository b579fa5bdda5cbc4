import { sql, type Kysely } from 'kysely';

// Frozen: a migration never changes after it has shipped and never imports application code.
// `Kysely<any>` because a migration sees the schema as it was then, not the current Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE users (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      phone text NOT NULL CONSTRAINT users_phone_key UNIQUE CHECK (phone ~ '^\\+[1-9][0-9]{6,14}$'),
      invite_code text NOT NULL CONSTRAINT users_invite_code_key UNIQUE CHECK (invite_code ~ '^[A-Z0-9]{6}$'),
      invited_by_id bigint REFERENCES users (id) ON DELETE RESTRICT,
      activated_invite_code text,
      activated_at timestamptz,
      invited_count integer NOT NULL DEFAULT 0 CHECK (invited_count >= 0),
      first_name text CHECK (char_length(first_name) BETWEEN 1 AND 64),
      last_name text CHECK (char_length(last_name) BETWEEN 1 AND 64),
      email text CHECK (char_length(email) <= 254),
      is_admin boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT users_not_self_invited CHECK (invited_by_id <> id),
      CONSTRAINT users_activation_complete CHECK (
        (invited_by_id IS NULL AND activated_invite_code IS NULL AND activated_at IS NULL)
        OR (invited_by_id IS NOT NULL AND activated_invite_code IS NOT NULL AND activated_at IS NOT NULL)
      )
    )
  `.execute(db);
  await sql`CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))`.execute(db);
  // "My invitees, newest first" is a keyset scan on this index: no sort of the invitee set.
  await sql`
    CREATE INDEX users_invitees_idx ON users (invited_by_id, activated_at DESC, id DESC)
    WHERE invited_by_id IS NOT NULL
  `.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('users').execute();
}
