import { sql, type Kysely } from 'kysely';

// Frozen. Accounts can now be blocked and deleted. A deleted account stays as an anonymous
// tombstone: its row keeps the invite graph whole (its inviter's count, its invitees' activations)
// and its invite code (never to be handed out again), and loses everything that names a person.
// One ALTER TABLE, so the two checks are validated in one pass over the table.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE users
      ALTER COLUMN phone DROP NOT NULL,
      ADD COLUMN blocked_at timestamptz,
      ADD COLUMN deleted_at timestamptz,
      ADD CONSTRAINT users_phone_unless_deleted CHECK (phone IS NOT NULL OR deleted_at IS NOT NULL),
      ADD CONSTRAINT users_deleted_anonymous CHECK (
        deleted_at IS NULL OR (phone IS NULL AND first_name IS NULL AND last_name IS NULL AND email IS NULL)
      )
  `.execute(db);
}

// Fails while a tombstone exists: the phones it erased cannot come back.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE users
      DROP CONSTRAINT users_deleted_anonymous,
      DROP CONSTRAINT users_phone_unless_deleted,
      DROP COLUMN deleted_at,
      DROP COLUMN blocked_at,
      ALTER COLUMN phone SET NOT NULL
  `.execute(db);
}
