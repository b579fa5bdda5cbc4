import { Migrator, type Kysely, type MigrationResult } from 'kysely';
import pg from 'pg';
import { migrations } from './migrations/index.js';

export class MigrationError extends Error {
  readonly results: readonly MigrationResult[];
  constructor(cause: unknown, results: readonly MigrationResult[]) {
    super(`migration failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MigrationError';
    this.results = results;
  }
}

/** Kysely's Migrator takes an advisory lock, so instances starting together do not race. */
export async function migrateToLatest<DB>(db: Kysely<DB>): Promise<readonly MigrationResult[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) throw new MigrationError(error, results);
  return results;
}

/**
 * Creates the database named in the URL when it does not exist (development convenience; in
 * production the operator or the compose file provides it).
 */
export async function ensureDatabaseExists(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name || name === 'postgres') return false;
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return true;
    } catch (error) {
      // Another process created it between our check and our CREATE.
      if ((error as { code?: string }).code === '42P04') return false;
      throw error;
    }
  } finally {
    await client.end();
  }
}
