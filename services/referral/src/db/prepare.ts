import type { MigrationResult } from 'kysely';
import { isUnreachableAtStart, StoreUnreachableError } from '@refstack/shared/platform';
import { createDatabase, NO_TIMEOUTS } from './database.js';
import { ensureDatabaseExists, migrateToLatest } from './migrate.js';

/**
 * Start-up step of the referral service and of `pnpm db:migrate`: creates the database when asked
 * (development), then applies pending migrations. A server that cannot be reached becomes a
 * StoreUnreachableError, which the process prints as advice.
 */
export async function prepareDatabase(
  url: string,
  options: { createIfMissing: boolean },
): Promise<{ created: boolean; results: readonly MigrationResult[] }> {
  const unreachable = (error: unknown): never => {
    if (isUnreachableAtStart(error)) throw new StoreUnreachableError('Postgres', url, error);
    throw error;
  };
  const created = options.createIfMissing ? await ensureDatabaseExists(url).catch(unreachable) : false;
  const db = createDatabase({ url, poolSize: 1, timeouts: NO_TIMEOUTS });
  try {
    const results = await migrateToLatest(db).catch(unreachable);
    return { created, results };
  } finally {
    await db.destroy();
  }
}
