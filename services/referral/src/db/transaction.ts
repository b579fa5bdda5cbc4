import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

// serialization_failure and deadlock_detected: the transaction lost a race and may simply run again.
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 40;
// Namespace of this service's advisory locks (the first of the two int4 keys).
const LOCK_NAMESPACE = 7270;

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

export interface SerializableOptions {
  /**
   * Ids to queue on before the transaction begins (a session advisory lock each, in order). Used
   * for a popular inviter: activations of one code then run one after another, each seeing the
   * last one's commit, instead of all failing serialization together and retrying in a storm.
   */
  queueOn?: readonly string[];
}

/**
 * Runs `fn` in a SERIALIZABLE transaction and retries it when PostgreSQL reports that it lost a
 * race. The invite graph's rules (one activation, no cycles of any length) depend on rows other
 * than the ones written, so the database's serializable isolation settles races, not hope.
 */
export async function serializable<T>(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>, options: SerializableOptions = {}): Promise<T> {
  const keys = [...new Set(options.queueOn ?? [])].sort();
  if (keys.length === 0) return retrying(() => db.transaction().setIsolationLevel('serializable').execute(fn));
  return db.connection().execute(async (conn) => {
    // Session locks, taken before BEGIN: a serializable snapshot taken after the wait sees the
    // previous holder's commit. The low 31 bits of an id are its key; a collision only queues more.
    for (const key of keys) await sql`SELECT pg_advisory_lock(${LOCK_NAMESPACE}, (${key}::bigint % 2147483647)::int)`.execute(conn);
    try {
      return await retrying(() => conn.transaction().setIsolationLevel('serializable').execute(fn));
    } finally {
      for (const key of keys.reverse()) await sql`SELECT pg_advisory_unlock(${LOCK_NAMESPACE}, (${key}::bigint % 2147483647)::int)`.execute(conn);
    }
  });
}

async function retrying<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (!code || !RETRYABLE.has(code) || attempt >= MAX_ATTEMPTS) throw error;
      // Jittered backoff so that the racers do not collide again in lockstep.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 4 * attempt * attempt)));
    }
  }
}
