import type { MigrationResult } from 'kysely';
import { StoreUnreachableError } from '@refstack/shared';
import { createDatabase, NO_TIMEOUTS } from './database.js';
import { ensureDatabaseExists, migrateToLatest } from './migrate.js';

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', '3D000', '28P01', '28000']);

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return /timeout/i.test(String((error as Error | undefined)?.message)) ? 'ETIMEDOUT' : undefined;
}

/**
 * Start-up step of the referral service and of `pnpm db:migrate`: creates the database when asked
 * (development), then applies pending migrations. A server that cannot be reached becomes a
 * StoreUnreachableError, which the process prints as advice.
 */
export async function prepareDatabase(url: string, options: { createIfMissing: boolean }): Promise<{ created: boolean; results: readonly MigrationResult[] }> {
  const unreachable = (error: unknown): never => {
    const code = errorCode(error);
    if (code && UNREACHABLE_CODES.has(code)) throw new StoreUnreachableError('Postgres', url, error);
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
