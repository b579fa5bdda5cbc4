import { sql, type Kysely } from 'kysely';

// Frozen. The admin search (GET /api/v1/users?search=) finds users by a run of phone digits
// anywhere in the number, an exact invite code, or the start of a first or last name. Without
// indexes for the first and the last of these, a search read the whole table newest first and
// hit the statement timeout at a few million users. pg_trgm is a trusted extension (PostgreSQL
// 13+): the database's owner may create it. Names are partial indexes: a sign-up has none, so it
// writes no entry to them. Statistics on the lowered names let the planner tell a rare name from
// a common one (without them it guessed 0.5% of the table for any, and walked the table newest
// first even for a name nobody else has). On a large table the build holds off sign-ups for as long as it runs;
// an operator can build the same indexes beforehand with CREATE INDEX CONCURRENTLY, and this
// migration then finds them made.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS users_phone_trgm_idx ON users USING gin (phone gin_trgm_ops)`.execute(db);
  await sql`
    CREATE INDEX IF NOT EXISTS users_first_name_prefix_idx ON users (lower(first_name) text_pattern_ops)
    WHERE first_name IS NOT NULL
  `.execute(db);
  await sql`
    CREATE INDEX IF NOT EXISTS users_last_name_prefix_idx ON users (lower(last_name) text_pattern_ops)
    WHERE last_name IS NOT NULL
  `.execute(db);
  await sql`CREATE STATISTICS IF NOT EXISTS users_first_name_lower_stats ON (lower(first_name)) FROM users`.execute(db);
  await sql`CREATE STATISTICS IF NOT EXISTS users_last_name_lower_stats ON (lower(last_name)) FROM users`.execute(db);
  await sql`ANALYZE users`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP STATISTICS IF EXISTS users_first_name_lower_stats, users_last_name_lower_stats`.execute(db);
  await sql`DROP INDEX IF EXISTS users_phone_trgm_idx, users_first_name_prefix_idx, users_last_name_prefix_idx`.execute(
    db,
  );
}
