import type { Test } from 'tap';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/schema.js';
import { STALE_INVITEE_LISTS_SQL } from '../../src/invites/invite-repository.js';

/**
 * What the invite graph must be whatever raced: a forest whose every edge ends at the row whose
 * code was activated, each inviter's count its real number of invitees, each embedded list the
 * newest invitees in index order.
 */
export async function assertForestAndCounts(t: Test, db: Kysely<Database>): Promise<void> {
  const cycles = await sql<{ n: string }>`
    WITH RECURSIVE walk(start, id, depth) AS (
      SELECT id, invited_by_id, 1 FROM users WHERE invited_by_id IS NOT NULL
      UNION ALL
      SELECT w.start, u.invited_by_id, w.depth + 1 FROM walk w JOIN users u ON u.id = w.id
      WHERE u.invited_by_id IS NOT NULL AND w.depth < 1000 AND w.id <> w.start
    )
    SELECT count(*) AS n FROM walk WHERE id = start
  `.execute(db);
  t.equal(cycles.rows[0]?.n, '0', 'the invite graph is a forest');
  // That each edge ends at a row is the foreign key's; that it ends at the row whose code was
  // activated is the activation's.
  const misnamed = await sql<{ n: string }>`
    SELECT count(*) AS n FROM users u JOIN users p ON p.id = u.invited_by_id
    WHERE u.activated_invite_code <> p.invite_code
  `.execute(db);
  t.equal(misnamed.rows[0]?.n, '0', 'every activation names its inviter’s code');
  const wrongCounts = await sql<{ n: string }>`
    SELECT count(*) AS n FROM users u
    WHERE u.invited_count <> (SELECT count(*) FROM users i WHERE i.invited_by_id = u.id)
  `.execute(db);
  t.equal(wrongCounts.rows[0]?.n, '0', 'every invited_count equals its real count');
  const wrongLists = await sql<{ n: number }>`${sql.raw(STALE_INVITEE_LISTS_SQL)}`.execute(db);
  t.equal(wrongLists.rows[0]?.n, 0, 'every embedded invitee list is the newest 100, in index order');
}
