import { sql, type Kysely } from 'kysely';

// Frozen. The admin search (GET /api/v1/users?search=) finds users by a run of phone digits
// anywhere in the number, an exact invite code, or the start of a first or last name. Without
// indexes for the first and the last of these, a search read the whole table newest first and
// hit the statement timeout at a few million users. pg_trgm is a trusted extension (PostgreSQL
// 13+): the database's owner may create it. Names are partial indexes: a sign-up has none, so it
// writes no entry to them. Statistics on the lowered names let the planner tell a rare name from
// a common one (without them it guessed 0.5% of the table for any, and walked the table newest
// first even for a name nobody else has).
// The builds hold every write to users (sign-ups, activations, profile edits) for as long as they
// run, within the migration's transaction. On a large table an operator builds the same indexes
// beforehand with CREATE INDEX CONCURRENTLY (README); this migration then finds them made and
// builds nothing, so it takes no lock that holds writes: even CREATE INDEX IF NOT EXISTS would
// take the table's SHARE lock before it looked, and keep it through the ANALYZE below. One such
// build that failed leaves its index invalid: that one is dropped and built again here. One still
// under way looks the same, so it is waited for, as for a lock (the start-up tries again).
// (Changed after release only in the locks it takes: the schema it leaves is the same.)
const BUILDS: Record<string, string> = {
  users_phone_trgm_idx: 'CREATE INDEX users_phone_trgm_idx ON users USING gin (phone gin_trgm_ops)',
  users_first_name_prefix_idx:
    'CREATE INDEX users_first_name_prefix_idx ON users (lower(first_name) text_pattern_ops) ' +
    'WHERE first_name IS NOT NULL',
  users_last_name_prefix_idx:
    'CREATE INDEX users_last_name_prefix_idx ON users (lower(last_name) text_pattern_ops) ' +
    'WHERE last_name IS NOT NULL',
};
const INDEXES = Object.keys(BUILDS);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
  // The indexes of this users table only: one of the same name elsewhere (a restored copy in
  // another schema) is not ours to keep or drop. A build still under way shows in the progress
  // view to a role that may see it; to one that may not, an invalid index while another session
  // holds the table's SHARE UPDATE EXCLUSIVE lock (a concurrent build, or a vacuum: either way, try
  // again shortly) is taken for one.
  const found = await sql<{ name: string; schema: string; valid: boolean; building: boolean }>`
    SELECT c.relname AS name, n.nspname AS schema, i.indisvalid AS valid,
      EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid)
      OR (NOT i.indisvalid AND EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.relation = i.indrelid AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted
          AND l.pid <> pg_backend_pid()
      )) AS building
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indrelid = 'users'::regclass AND c.relname = ANY(${INDEXES}::text[])
  `.execute(db);
  const building = found.rows.filter((index) => index.building).map((index) => index.name);
  if (building.length > 0) {
    // lock_not_available: the start-up rolls back, waits and tries again, as for a lock.
    throw Object.assign(new Error(`an index is still being built concurrently: ${building.join(', ')}`), {
      code: '55P03',
    });
  }
  const valid = new Set(found.rows.filter((index) => index.valid).map((index) => index.name));
  for (const { name, schema } of found.rows)
    if (!valid.has(name)) await sql`DROP INDEX ${sql.id(schema, name)}`.execute(db);
  for (const [name, build] of Object.entries(BUILDS)) if (!valid.has(name)) await sql.raw(build).execute(db);
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
