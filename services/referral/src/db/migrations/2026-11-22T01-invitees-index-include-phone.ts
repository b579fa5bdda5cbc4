import { sql, type Kysely } from 'kysely';

// Frozen. The invitee index also carries the phone, so the profile's embedded list and the
// invitee pages are index-only scans: no visit to the table rows of the invitees at all.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE INDEX users_invitees_phone_idx ON users (invited_by_id, activated_at DESC, id DESC) INCLUDE (phone)
    WHERE invited_by_id IS NOT NULL
  `.execute(db);
  await sql`DROP INDEX users_invitees_idx`.execute(db);
  await sql`ALTER INDEX users_invitees_phone_idx RENAME TO users_invitees_idx`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX users_invitees_idx`.execute(db);
  await sql`
    CREATE INDEX users_invitees_idx ON users (invited_by_id, activated_at DESC, id DESC)
    WHERE invited_by_id IS NOT NULL
  `.execute(db);
}
