import pg from 'pg';
import { newestInviteePhones } from '../services/referral/src/invites/invitee-list-sql.js';

export interface SeededUser {
  id: string;
  phone: string;
}

export interface Seeded {
  /** A user without invitees. */
  ordinary: SeededUser;
  /** The owner of 100,000 invitees. */
  popular: SeededUser;
  /** 60,000 users who have not activated a code: one activation each, half of them per scenario. */
  activators: SeededUser[];
  /** Codes of 100 invitees, who may still invite others: what the activators activate. */
  inviterCodes: string[];
  /** The popular user's code, which the other half of the activators activate. */
  popularCode: string;
}

const INVITEES = 100_000;
const ACTIVATORS = 60_000;

/** Fills a freshly migrated database; the ids are those a fresh sequence hands out. */
export async function seed(databaseUrl: string): Promise<Seeded> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query(`
      INSERT INTO users (phone, invite_code) VALUES ('+79000000001', 'ORDNRY'), ('+79000000002', 'POPULR');
      INSERT INTO users (phone, invite_code, invited_by_id, activated_invite_code, activated_at)
        SELECT '+791' || lpad(g::text, 8, '0'), 'I' || lpad(upper(to_hex(g)), 5, '0'), 2, 'POPULR',
          now() - g * interval '1 second'
        FROM generate_series(1, ${INVITEES}) g;
      -- What the activations would have left on the inviter's row: the count and the newest 100.
      UPDATE users SET invited_count = ${INVITEES}, invited_users = to_json(${newestInviteePhones('users.id')})
      WHERE id = 2;
      INSERT INTO users (phone, invite_code)
        SELECT '+792' || lpad(g::text, 8, '0'), 'A' || lpad(upper(to_hex(g)), 5, '0')
        FROM generate_series(1, ${ACTIVATORS}) g;
    `);
    // As autovacuum would after a bulk load: statistics, and the visibility map for index-only scans.
    await db.query('VACUUM ANALYZE users');
    const activators = await db.query<SeededUser>(
      `SELECT id::text, phone FROM users WHERE phone LIKE '+792%' ORDER BY id`,
    );
    const inviters = await db.query<{ invite_code: string }>(
      `SELECT invite_code FROM users WHERE phone LIKE '+791%' ORDER BY id LIMIT 100`,
    );
    return {
      ordinary: { id: '1', phone: '+79000000001' },
      popular: { id: '2', phone: '+79000000002' },
      activators: activators.rows,
      inviterCodes: inviters.rows.map((r) => r.invite_code),
      popularCode: 'POPULR',
    };
  } finally {
    await db.end();
  }
}
