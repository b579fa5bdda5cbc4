import { sql, type Kysely } from 'kysely';

// Frozen. A profile embeds its owner's newest invitee phones (at most 100). Kept on the owner's row
// as the JSON array the answer carries, written by each activation in the transaction that adds the
// invitee, so a profile read is one row however many invitees its owner has, instead of a scan of
// the invitee index on every read.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users ADD COLUMN invited_users json NOT NULL DEFAULT '[]'`.execute(db);
  // A full list is up to ~1.9 KB: past the default 2 KB tuple target a row would be compressed, and
  // every profile read would decompress it. Rows here stay far below 8 KB, so none is toasted.
  await sql`ALTER TABLE users SET (toast_tuple_target = 8160)`.execute(db);
  await sql`
    UPDATE users u SET invited_users = to_json(ARRAY(
      SELECT phone FROM users i
      WHERE i.invited_by_id = u.id
      ORDER BY i.activated_at DESC, i.id DESC
      LIMIT 100
    ))
    WHERE EXISTS (SELECT 1 FROM users i WHERE i.invited_by_id = u.id)
  `.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users RESET (toast_tuple_target)`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN invited_users`.execute(db);
}
