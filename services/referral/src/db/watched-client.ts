import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import pg from 'pg';

/**
 * Whether a failed query leaves its connection in an unknown state: anything but an error the server
 * answered. node-postgres' read timeout (`query_timeout`) answers the caller but does not cancel the
 * statement, which may still be running, or still take a lock, after the connection is reused.
 */
export function failedOnClientSide(error: unknown): boolean {
  return !(error instanceof pg.DatabaseError);
}

/** A pooled client as Kysely sees it, which remembers whether one of its queries failed on the client side. */
export class WatchedClient implements PostgresPoolClient {
  broken = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly onRelease: (broken: boolean) => void,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    sqlOrCursor: string | PostgresCursor<R>,
    parameters?: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Kysely streams through a cursor only when configured with one; this service never is.
    if (typeof sqlOrCursor !== 'string') throw new Error('cursors are not supported');
    return this.client.query(sqlOrCursor, parameters as unknown[]).catch((error: unknown) => {
      if (failedOnClientSide(error)) this.broken = true;
      throw error;
    }) as Promise<PostgresQueryResult<R>>;
  }

  release(): void {
    this.onRelease(this.broken);
  }
}

/**
 * The pool as Kysely sees it: a client whose query failed on the client side is destroyed when
 * released, never handed to the next request.
 */
export function watchedPool(pool: pg.Pool): PostgresPool {
  return {
    connect: async () => {
      const client = await pool.connect();
      // release(true) makes node-postgres' pool close the client instead of keeping it.
      return new WatchedClient(client, (broken) => client.release(broken));
    },
    end: () => pool.end(),
  };
}
