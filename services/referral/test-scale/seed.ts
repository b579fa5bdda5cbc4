import { sql, type Kysely } from 'kysely';
import type { Database } from '../src/db/schema.js';
import { recordInviteesAsActivations } from '../test/referral-test-app.js';

/** How many users the scale checks seed: `pnpm test:scale --users=<n>` (at least 1,000,000). */
export const SCALE_USERS = Math.max(1_000_000, Number(process.env['SCALE_USERS'] ?? 1_000_000));

/**
 * `users` users (up to 16,777,215, the six hex digits) with phones +790 and their id in eight digits
 * (+7900… below ten million), invite codes their id in hex (six digits, upper case), created a
 * second apart, named (a first name of eight, so each is common; a last name `Ln` and their id, so
 * each is rare); the first one invited the next `invitees` (each activated a second apart), with its
 * count and embedded list as activations leave them; then what autovacuum would do after a bulk load
 * (statistics, and the visibility map for index-only scans).
 */
export async function seedUsers(db: Kysely<Database>, users: number, invitees: number): Promise<void> {
  await sql`
    INSERT INTO users (phone, invite_code, created_at, first_name, last_name)
    SELECT '+790' || lpad(g::text, 8, '0'), upper(lpad(to_hex(g), 6, '0')), now() - g * interval '1 second',
      (ARRAY['Anna', 'Ivan', 'Olga', 'Petr', 'Maria', 'Sergey', 'Elena', 'Dmitry'])[g % 8 + 1], 'Ln' || g
    FROM generate_series(1, ${users}::int) g
  `.execute(db);
  await sql`
    UPDATE users SET invited_by_id = 1, activated_invite_code = '000001',
      activated_at = now() - id * interval '1 second'
    WHERE id BETWEEN 2 AND ${invitees + 1}
  `.execute(db);
  await recordInviteesAsActivations(db, '1');
  await sql`VACUUM ANALYZE users`.execute(db);
}

/** The invite code seedUsers gave user `id`. */
export function seededCode(id: number): string {
  return id.toString(16).padStart(6, '0').toUpperCase();
}
