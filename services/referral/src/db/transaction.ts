import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pLimit, { type LimitFunction } from 'p-limit';
import type pg from 'pg';
import { HeldConnection, poolOf, SERVICE_TIMEOUTS } from './database.js';
import type { Deadline } from './deadline.js';
import type { Database } from './schema.js';
import { failedOnClientSide, WatchedClient } from './watched-client.js';

// serialization_failure and deadlock_detected: the transaction lost a race and may simply run again.
const RETRYABLE = new Set(['40001', '40P01']);
// Namespace of this service's advisory locks (the first of the two int4 keys). The low 31 bits of
// an id are its key; a collision only queues more.
const LOCK_NAMESPACE = 7270;
const LOCK = `SELECT pg_advisory_lock(${LOCK_NAMESPACE}, ($1::bigint % 2147483647)::int)`;
const UNLOCK = `SELECT pg_advisory_unlock(${LOCK_NAMESPACE}, ($1::bigint % 2147483647)::int) AS unlocked`;

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

export interface SerializableOptions {
  /**
   * Ids to queue on before the transaction begins (a session advisory lock each, in order): a
   * phone change or a deletion queues on the inviter whose list it rewrites (the key activations
   * take inside `activate_invite`), so each sees the last one's commit instead of failing
   * serialization and retrying.
   */
  queueOn?: readonly string[];
  /** No attempt starts, and none commits, after this; the caller then answers 503 (see Deadline). */
  deadline: Deadline;
}

/**
 * How many of a pool's connections may be queued on advisory locks at once: half, so that however
 * many activations wait on busy inviters, reads always find the other half free. The rest of the
 * activations wait here, in memory, for as long as their deadline allows.
 */
const lockSlots = new WeakMap<pg.Pool, LimitFunction>();
function lockSlotsOf(pool: pg.Pool): LimitFunction {
  let slots = lockSlots.get(pool);
  if (!slots) {
    slots = pLimit(Math.max(1, Math.floor((pool.options.max ?? 10) / 2)));
    lockSlots.set(pool, slots);
  }
  return slots;
}

/**
 * Runs `fn` in a SERIALIZABLE transaction and retries it when PostgreSQL reports that it lost a
 * race, until the deadline. The invite graph's rules (one activation, no cycles of any length)
 * depend on rows other than the ones written, so the database's serializable isolation settles
 * races, not hope.
 */
export async function serializable<T>(
  db: Kysely<Database>,
  fn: (trx: Transaction<Database>) => Promise<T>,
  options: SerializableOptions,
): Promise<T> {
  const { deadline } = options;
  const attempt = (on: Kysely<Database>) =>
    on
      .transaction()
      .setIsolationLevel('serializable')
      .execute(async (trx) => {
        const result = await fn(trx);
        // Past the deadline the caller answers 503, which must mean that nothing was applied.
        deadline.beginCommit();
        return result;
      })
      .catch((error: unknown) => {
        deadline.endCommit();
        throw error;
      });
  const keys = [...new Set(options.queueOn ?? [])].sort();
  const pool = poolOf(db);
  if (keys.length === 0) return retrying(() => attempt(db), deadline);
  return lockSlotsOf(pool)(() =>
    whileLocked(pool, keys, deadline, (locked) => retrying(() => attempt(locked), deadline)),
  );
}

/** A statement's lock waits: the connection's usual bound, or what is left of the deadline if less. */
function lockWaitMs(deadline: Deadline): number {
  return Math.max(1, Math.min(SERVICE_TIMEOUTS.lockMs, deadline.remainingMs()));
}

/**
 * One statement that may queue on an inviter's advisory lock inside the database (an activation,
 * its own transaction): at most half the pool's connections at once (see lockSlotsOf), a deadlock
 * retried until the deadline. The statement commits as it ends, so the deadline's commit mark is
 * set before it starts, and its lock waits end by the deadline instead. Its connection is taken
 * first: a wait for one is still before the mark, where the deadline can answer 503, and the lock
 * waits are measured from the moment the statement is sent.
 */
export async function queuedStatement<T>(
  db: Kysely<Database>,
  deadline: Deadline,
  statement: (on: HeldConnection, lockWaitMs: number) => Promise<T>,
): Promise<T> {
  const pool = poolOf(db);
  return lockSlotsOf(pool)(() =>
    retrying(async () => {
      const held = new HeldConnection(await pool.connect());
      try {
        deadline.beginCommit();
        try {
          return await statement(held, lockWaitMs(deadline));
        } catch (error) {
          deadline.endCommit();
          throw error;
        }
      } finally {
        // Only a query that failed on the client side may still run, or still hold its locks; a
        // refusal the statement's caller made of its answer leaves the connection as good as new.
        held.client.release(held.broken);
      }
    }, deadline),
  );
}

/**
 * The same in a READ COMMITTED transaction, for an activation that writes something else with it
 * (a new user, profile changes): its locks last until the commit, the last step the deadline allows.
 */
export async function queuedTransaction<T>(
  db: Kysely<Database>,
  deadline: Deadline,
  fn: (trx: Transaction<Database>, lockWaitMs: number) => Promise<T>,
): Promise<T> {
  return lockSlotsOf(poolOf(db))(() =>
    retrying(
      () =>
        db
          .transaction()
          .setIsolationLevel('read committed')
          .execute(async (trx) => {
            const result = await fn(trx, lockWaitMs(deadline));
            deadline.beginCommit();
            return result;
          })
          .catch((error: unknown) => {
            deadline.endCommit();
            throw error;
          }),
      deadline,
    ),
  );
}

/**
 * Takes the session locks on one connection of its own, before BEGIN (a serializable snapshot taken
 * after the wait sees the previous holder's commit), and runs `work` on that connection. The wait
 * is bounded by the connection's lock_timeout. A connection that may still hold a lock, or wait for
 * one (its query failed on the client side, an unlock failed), is destroyed, never reused: the
 * server then drops its locks with the session.
 */
async function whileLocked<T>(
  pool: pg.Pool,
  keys: readonly string[],
  deadline: Deadline,
  work: (db: Kysely<Database>) => Promise<T>,
): Promise<T> {
  deadline.check();
  const client = await pool.connect();
  let reusable = true;
  const held: string[] = [];
  try {
    deadline.check();
    for (const key of keys) {
      try {
        await client.query(LOCK, [key]);
      } catch (error) {
        if (failedOnClientSide(error)) reusable = false;
        throw error;
      }
      held.push(key);
    }
    const watched = new WatchedClient(client, () => undefined);
    try {
      return await work(onClient(watched));
    } finally {
      if (watched.broken) reusable = false;
    }
  } finally {
    for (const key of held.reverse()) {
      if (!reusable) break;
      const unlocked = await client.query<{ unlocked: boolean }>(UNLOCK, [key]).then(
        (r) => r.rows[0]?.unlocked === true,
        () => false,
      );
      if (!unlocked) reusable = false;
    }
    client.release(!reusable);
  }
}

/** A Kysely handle on one connection that the caller holds (and releases). */
function onClient(client: WatchedClient): Kysely<Database> {
  return new Kysely<Database>({
    dialect: new PostgresDialect({ pool: { connect: async () => client, end: async () => undefined } }),
  });
}

async function retrying<T>(run: () => Promise<T>, deadline: Deadline): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    deadline.check();
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (!code || !RETRYABLE.has(code)) throw error;
      // Jittered backoff so that the racers do not collide again in lockstep.
      const pause = Math.random() * Math.min(200, 4 * attempt * attempt);
      if (pause >= deadline.remainingMs()) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
