import { sql, type Kysely } from 'kysely';

// Frozen. The latest block's time, which an unblock leaves: auth refuses the refresh of a session
// begun at or before it, so a block ends every session even when no auth instance heard it
// announced (blocked_at is cleared by the unblock, and the announcement's Redis entry expires with
// the access tokens). Accounts blocked now get their block's time; one lifted before this is lost.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users ADD COLUMN revoked_before timestamptz`.execute(db);
  await sql`UPDATE users SET revoked_before = date_trunc('second', blocked_at) WHERE blocked_at IS NOT NULL`.execute(
    db,
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users DROP COLUMN revoked_before`.execute(db);
}
