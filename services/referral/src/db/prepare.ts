import type { MigrationResult } from 'kysely';
import { isUnreachableAtStart, StoreUnreachableError } from '@refstack/shared/platform';
import { createDatabase, NO_TIMEOUTS } from './database.js';
import { ensureDatabaseExists, migrateToLatest } from './migrate.js';

/** PostgreSQL's lock_not_available: a lock wait ran past lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

export interface MigrationPatience {
  /**
   * How long a migration waits for one lock before it gives way: a table's, held by a long
   * transaction (a dump, an operator's session), or another instance's migration. A migration's
   * ALTER waiting for a table holds up every later statement on it, so it waits for less than the
   * service's own statements wait for a lock (SERVICE_TIMEOUTS): they are delayed, never refused.
   */
  lockMs: number;
  /** How long start-up keeps trying again before it gives up (the process then exits). */
  giveUpAfterMs: number;
}

export const MIGRATION_PATIENCE: MigrationPatience = { lockMs: 500, giveUpAfterMs: 30 * 60_000 };

function lockTimedOut(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 4; depth += 1) {
    if ((e as { code?: unknown }).code === LOCK_NOT_AVAILABLE) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Start-up step of the referral service and of `pnpm db:migrate`: creates the database when asked
 * (development), then applies pending migrations. A server that cannot be reached becomes a
 * StoreUnreachableError, which the process prints as advice. Migrations that could not get a lock
 * in time were rolled back whole (they run in one transaction) and are tried again, waiting about a
 * second, then twice as long each time up to 15 s, while the instances already running serve.
 */
export async function prepareDatabase(
  url: string,
  options: { createIfMissing: boolean; patience?: MigrationPatience; onWait?: (message: string) => void },
): Promise<{ created: boolean; results: readonly MigrationResult[] }> {
  const unreachable = (error: unknown): never => {
    if (isUnreachableAtStart(error)) throw new StoreUnreachableError('Postgres', url, error);
    throw error;
  };
  const patience = options.patience ?? MIGRATION_PATIENCE;
  const created = options.createIfMissing ? await ensureDatabaseExists(url).catch(unreachable) : false;
  const db = createDatabase({ url, poolSize: 1, timeouts: { ...NO_TIMEOUTS, lockMs: patience.lockMs } });
  try {
    const started = Date.now();
    for (let pause = 1000; ; pause = Math.min(pause * 2, 15_000)) {
      try {
        return { created, results: await migrateToLatest(db) };
      } catch (error) {
        if (!lockTimedOut(error)) unreachable(error);
        // Not an unreachable server (its message names a timeout, which would read as one).
        if (Date.now() - started + pause > patience.giveUpAfterMs) throw error;
        options.onWait?.(
          `migrations waited ${patience.lockMs} ms for a lock another session holds; ` +
            `rolled back, trying again in about ${pause / 1000} s`,
        );
        // Jittered, so that instances starting together do not queue for the table in step.
        await new Promise((resolve) => setTimeout(resolve, pause * (0.75 + Math.random() / 2)));
      }
    }
  } finally {
    await db.destroy();
  }
}
