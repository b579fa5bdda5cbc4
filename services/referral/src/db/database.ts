import { CompiledQuery, Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { failedOnClientSide, watchedPool } from './watched-client.js';

// bigint ids travel as strings (pg's default for int8), counts arrive as numbers.
pg.types.setTypeParser(pg.types.builtins.INT4, (value) => Number.parseInt(value, 10));

/**
 * Bounds on every statement of a pool's connections, in milliseconds; 0 sets none. The server-side
 * ones cancel the statement itself (and so release what it waited for); the client-side one is the
 * backstop for a server that does not answer at all, and the connection is then destroyed.
 */
export interface DatabaseTimeouts {
  /** statement_timeout: any statement, a lock wait included. */
  statementMs: number;
  /** lock_timeout: a wait for a row or advisory lock. */
  lockMs: number;
  /** idle_in_transaction_session_timeout: a session left idle in a transaction ends, locks and all. */
  idleInTransactionMs: number;
  /** node-postgres' query_timeout, past the server's own so that the server cancels first. */
  queryMs: number;
}

/**
 * The service's requests: nothing it runs takes a second, so a statement stuck behind a lock or a
 * sick server answers 503 within these instead of holding a pooled connection.
 */
export const SERVICE_TIMEOUTS: DatabaseTimeouts = {
  statementMs: 2000,
  lockMs: 1000,
  idleInTransactionMs: 5000,
  queryMs: 4000,
};
/** Migrations and bulk work, whose statements may rightly run long or wait for other sessions. */
export const NO_TIMEOUTS: DatabaseTimeouts = { statementMs: 0, lockMs: 0, idleInTransactionMs: 0, queryMs: 0 };

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  timeouts?: DatabaseTimeouts;
}

const pools = new WeakMap<Kysely<Database>, pg.Pool>();

/** The pool behind a handle, for the connections that hold advisory locks (see transaction.ts). */
export function poolOf(db: Kysely<Database>): pg.Pool {
  const pool = pools.get(db);
  // Every handle comes from createDatabase: there is no second, pool-less way to run these reads.
  if (!pool) throw new Error('this database handle was not made by createDatabase');
  return pool;
}

/**
 * One pooled connection, taken before a statement whose bounds are measured from when it starts
 * (see queuedStatement): the caller releases it.
 */
export class HeldConnection {
  /** A query of it failed on the client side (see failedOnClientSide): not to be pooled again. */
  broken = false;
  constructor(readonly client: pg.PoolClient) {}
}

/**
 * A hot statement: named (parsed and planned once per connection) when `db` is a handle of
 * createDatabase or a held connection, through Kysely as an unnamed one in a transaction or on any
 * other handle; the rest of the service's statements go through Kysely. Its columns are named,
 * never `*` (see PROFILE_BY_ID). (pool.query destroys a client whose query failed in any way.)
 */
export async function runStatement<Row>(
  db: Kysely<Database> | Transaction<Database> | HeldConnection,
  statement: { name: string; text: string },
  values: unknown[],
): Promise<Row[]> {
  if (db instanceof HeldConnection)
    try {
      return (await db.client.query<Row & pg.QueryResultRow>({ ...statement, values })).rows;
    } catch (error) {
      if (failedOnClientSide(error)) db.broken = true;
      throw error;
    }
  const pool = pools.get(db);
  if (pool) return (await pool.query<Row & pg.QueryResultRow>({ ...statement, values })).rows;
  return (await db.executeQuery<Row>(CompiledQuery.raw(statement.text, values))).rows;
}

export function createDatabase(options: DatabaseOptions): Kysely<Database> {
  const timeouts = options.timeouts ?? SERVICE_TIMEOUTS;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: 2000,
    idleTimeoutMillis: 30_000,
    // Sent as startup parameters (a value of 0 is not sent): no extra round trip per connection.
    statement_timeout: timeouts.statementMs,
    lock_timeout: timeouts.lockMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    query_timeout: timeouts.queryMs,
    application_name: 'referral',
  });
  // An idle client losing its server emits here; the pool replaces it, requests see the next error.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: watchedPool(pool) }) });
  pools.set(db, pool);
  return db;
}

export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`SELECT 1`.execute(db);
}
