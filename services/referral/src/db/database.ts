import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

// bigint ids travel as strings (pg's default for int8), counts arrive as numbers.
pg.types.setTypeParser(pg.types.builtins.INT4, (value) => Number.parseInt(value, 10));

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  /** A query stuck behind a lock or a dead server answers 503 instead of hanging the request. */
  queryTimeoutMs?: number;
}

const pools = new WeakMap<Kysely<Database>, pg.Pool>();

/**
 * The pool behind a handle, for the few hot reads that run as named prepared statements (parsed
 * and planned once per connection); everything else goes through Kysely.
 */
export function poolOf(db: Kysely<Database>): pg.Pool | undefined {
  return pools.get(db);
}

export function createDatabase(options: DatabaseOptions): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: 2000,
    idleTimeoutMillis: 30_000,
    query_timeout: options.queryTimeoutMs ?? 5000,
    application_name: 'referral',
  });
  // An idle client losing its server emits here; the pool replaces it, requests see the next error.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return db;
}

export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`SELECT 1`.execute(db);
}
